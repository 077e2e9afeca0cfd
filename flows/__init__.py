"""xnorvit.flows: FINN ops and transforms, build steps, reports, CLI."""
