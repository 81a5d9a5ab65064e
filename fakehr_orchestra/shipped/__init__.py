"""In a wheel: the top-level recipes/, rewards/ and launch/ folders (see setup.py); in a checkout, empty.

Read them through `fakehr_orchestra.resources`, which finds them in either place.
"""
