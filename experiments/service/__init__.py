"""The HTTP service: API, auth, scheduler of submitted sweeps, and the web dashboard."""
