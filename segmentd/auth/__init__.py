"""Authorization: who may do what. Authentication lives in the API layer's dependencies."""
