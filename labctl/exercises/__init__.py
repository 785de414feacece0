"""Build-it exercises: the student writes or fixes a file, `labctl exercise check NAME` says pass or fail.

Each exercise is one entry in EXERCISES: the module it belongs to, the file the student starts from,
and a verifier that returns one Finding per thing it checked (what it checked, whether it held, and a
hint that points at the idea, never the answer). Model solutions live in lab/docs/answer-key/.
"""

from labctl.exercises.registry import EXERCISES, Exercise, Finding, find_exercise

__all__ = ["EXERCISES", "Exercise", "Finding", "find_exercise"]
