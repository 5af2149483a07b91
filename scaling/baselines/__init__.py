"""Classic baselines on the same loss axes as the neural families: sklearn classifiers
(`classic`), an interpolated Kneser-Ney n-gram LM (`ngram`), and the sweep entry point (`run`)."""
