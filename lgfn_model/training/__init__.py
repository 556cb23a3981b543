"""Training the LGFN model: data readers, fixed splits, feature cache, baselines, the loop."""
