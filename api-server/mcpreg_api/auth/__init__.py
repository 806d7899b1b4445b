"""Who may read the API (`auth` of the configuration document): bearer tokens (`bearer`), decisions
and their cache (`decision`, `cache`), Kubernetes TokenReview + SubjectAccessReview (`kubernetes`),
and the middleware that applies them (`middleware`)."""
