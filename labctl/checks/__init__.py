"""Layer-by-layer end-to-end checks: a marker followed from the proxy to Grafana's panels."""
