"""Where PostgreSQL lives: the server's address, a throwaway cluster, the administrative
connection and scratch databases, and reads of the catalog.
"""
