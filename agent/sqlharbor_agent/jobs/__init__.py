"""Job execution: claiming BackupJobs/RestoreJobs, running them, and reporting their status."""
