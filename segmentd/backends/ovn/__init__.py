"""The OVN backend: networks and segments realized in the OVN Northbound DB (ovsdbapp)."""
