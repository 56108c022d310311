"""Credentials: where crgate's bearer tokens come from (IAM token, service account key, workload identity
federation, OAuth token, VM metadata), which source a run uses, and refreshing them before they expire.

Nothing here imports gRPC: the one exchange that needs it (``IamTokenService.Create``) is injected as an
``IamExchange`` (``crgate.scanner.iam``). Secrets never appear in a ``repr``, a log line or an error.
"""
