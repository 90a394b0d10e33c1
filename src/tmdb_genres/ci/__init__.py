"""Workflow commands for GitHub Actions: the metrics report and the one GitHub client they share."""
