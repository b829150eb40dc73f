"""Who is calling and what they may do: TLS, authentication, authorization (issue 14)."""
