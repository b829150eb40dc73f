"""The built-in jobs framework: batch jobs, services and cron jobs (`mesoslite job`)."""
