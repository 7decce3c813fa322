"""Stage 3 - ledger: what each account runs now and its $/hour (pure). See pure.py."""
