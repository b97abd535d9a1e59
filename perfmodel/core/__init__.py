"""The cost model: ops -> cost -> memory -> inference, deployments and `predict`.
Imports only perfmodel.specs (and the root helpers errors/paths)."""
