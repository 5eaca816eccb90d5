"""The Engine contract suite, run against every engine available."""
