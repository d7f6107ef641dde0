"""Helpers shared by the hostile suites (faults, crash, concurrency, hostile input, secrets).

Nothing here is committed test data: hostile inputs are generated into ``tmp_path`` at test time.
"""
