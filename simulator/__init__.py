"""PoseExaminer: simulator."""
