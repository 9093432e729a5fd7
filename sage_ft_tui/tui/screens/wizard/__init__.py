"""The wizard's steps (task → model → data → hardware → review); the order lives in the App's flow, not here."""
