"""Helpers shared by the test modules; fixtures stay in tests/conftest.py.

`tests` is on pytest's `pythonpath`, so test modules import these as `support.<module>`:
`ids` (new_id), `paths` (ROOT), `databases` (make_database, count, DATABASES),
`workers` (WorkerFactory), `temporal_cli` (the Go `temporal` CLI), `payloads` (payloads_in),
`fake_openai` (a scripted OpenAI-compatible endpoint), `histories` (the committed histories),
`teams` (the team scripts that tests/record_histories.py records), `visibility` (listed),
`tiers` (the test tiers), `processes` (starter.py and worker.py subprocesses through the
fork server in `forkserver`/`launcher`).
"""
