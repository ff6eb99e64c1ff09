"""HTTP only: Neutron's wire format and routing; no rules live here."""
