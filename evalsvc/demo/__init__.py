"""Demo data: a team, users, models, data sets and runs for a fresh local install (``manage.py seed_demo``).

It sits above every other app (it uses their services), so ``core`` stays the bottom layer.
"""
