"""Clean-up: the watchdog that removes what a killed run created, and the sweep of what
earlier killed runs left.
"""
