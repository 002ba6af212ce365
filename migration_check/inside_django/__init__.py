"""Code that runs inside the project's Django process (a `manage.py shell -c` child).

The tool never imports Django itself: these modules are run by the child, which finds this
package through the one `sys.path` entry the bootstrap line adds (`protocol.bootstrap_code`).
They talk to the tool in JSON: the request in an environment variable, the answer on one
stdout line after a marker (`protocol`).

- `probe`: the project as Django sees it (apps, the migration graph, the database in use),
  without touching any database.
- `prepare`: builds a scratch database forward to a state (real `migrate` commands) and
  describes the historical models around each migration of a window.
- `stages`: one `migrate` to all of a build stage's targets (one per target where it cannot).
- `replaced`: migrates through the migrations a squash replaces, the path of a database older
  than the squash, where `migrate APP NAME` cannot start it.
- `fork_server`: the step server (`--isolation fork`): Django started once for a database,
  then a forked child per step, talking to the tool over two pipes (JSON lines).
"""
