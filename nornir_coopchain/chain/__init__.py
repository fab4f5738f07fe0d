"""The chain layer: artifacts, client, accounts, transactions, events and contract bindings."""
