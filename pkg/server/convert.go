package server

import (
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// The API has its own types for what the import pipeline and the vault
// report, so that a client links neither (issue 13): these copy them.
// TestWireTypesMatch checks that each pair has the same JSON.

func importReport(r *pipeline.Report) *api.ImportReport {
	out := &api.ImportReport{
		File: r.File, Format: r.Format, SHA256: r.SHA256,
		Added: r.Added, Updated: r.Updated, Duplicates: r.Duplicates, Skipped: r.Skipped, Failed: r.Failed,
		Failures: r.Failures, Error: r.Error, DryRun: r.DryRun,
		PatientMismatch: r.PatientMismatch, OwnerFilled: r.OwnerFilled, Warning: r.Warning,
		ByType: make(map[string]*api.ImportCounts, len(r.ByType)),
	}
	for t, c := range r.ByType {
		out.ByType[t] = &api.ImportCounts{Added: c.Added, Updated: c.Updated, Duplicates: c.Duplicates, Skipped: c.Skipped, Failed: c.Failed}
	}
	for _, s := range r.Skips {
		out.Skips = append(out.Skips, api.ImportSkip{ResourceType: s.ResourceType, Reason: s.Reason, Count: s.Count})
	}
	return out
}

func importReports(rs []*pipeline.Report) []*api.ImportReport {
	out := make([]*api.ImportReport, len(rs))
	for i, r := range rs {
		out[i] = importReport(r)
	}
	return out
}

func auditEntries(es []vault.AuditEntry) []api.AuditEntry {
	out := make([]api.AuditEntry, len(es))
	for i, e := range es {
		out[i] = api.AuditEntry{Seq: e.Seq, Time: e.Time, Event: e.Event, Success: e.Success, Method: e.Method,
			Client: e.Client, Ref: e.Ref, Label: e.Label, Format: e.Format, Counts: e.Counts}
	}
	return out
}
