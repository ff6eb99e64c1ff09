"""Request bodies: strict types, Neutron's limits, unknown attributes refused.

One module per resource, below the API: routes parse bodies with them, and services and
workers may validate with them too (the chassis worker checks a chassis as a host report).
"""
