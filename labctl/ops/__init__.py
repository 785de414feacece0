"""Operating a running lab: configuration reloads, backup and restore."""
