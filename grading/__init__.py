"""Assignments from the library: the student version (release), the autograder (grade) and
its Gradescope package (autograder-zip). See ``python -m grading --help``."""
