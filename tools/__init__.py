"""Developer tools run by the Makefile (demo, HEC client); not shipped in the Lambda."""
