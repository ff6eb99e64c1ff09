"""segmentd: network segment management speaking Neutron's /v2.0 API."""
