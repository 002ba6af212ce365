"""Child processes: which process is which, what the run tells its watchdog, the step runner
through which every `manage.py` call goes, and the step servers steps are forked from.
"""
