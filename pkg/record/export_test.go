package record

// SetSkipNormalize turns normalization at construction off or on, for
// BenchmarkNewAppleHealth.
func SetSkipNormalize(skip bool) { skipNormalize = skip }
