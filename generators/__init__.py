"""PoseExaminer: generators."""
