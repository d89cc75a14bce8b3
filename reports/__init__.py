"""PoseExaminer: reports."""
