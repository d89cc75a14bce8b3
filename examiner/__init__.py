"""PoseExaminer: examiner."""
