"""The demo's story of a simulated fleet: evidence per incident, offline detection rules,
plots, the response step and the live Splunk round trip."""
