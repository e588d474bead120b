package applehealth

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

// countSink counts records without keeping them.
type countSink struct {
	n, skips, fails int
	every           int    // sample the heap every this many records
	base            uint64 // HeapAlloc when the import started
	maxHeap         uint64 // highest growth of HeapAlloc over base
}

func (s *countSink) Record(record.Record) error {
	s.n++
	if s.every > 0 && s.n%s.every == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > s.base {
			s.maxHeap = max(s.maxHeap, ms.HeapAlloc-s.base)
		}
	}
	return nil
}
func (s *countSink) Skip(string, string)       { s.skips++ }
func (s *countSink) Fail(*importers.ItemError) { s.fails++ }

func BenchmarkImportAppleHealth(b *testing.B) {
	data := importertest.ReadFile(b, ashtom)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := &countSink{}
		in := &importers.Input{Name: "export.xml", R: bytes.NewReader(data), Size: int64(len(data))}
		if err := New().Import(context.Background(), in, s); err != nil {
			b.Fatal(err)
		}
		if s.n != 11000 {
			b.Fatalf("%d records", s.n)
		}
	}
}

func BenchmarkImportAppleHealthDaily(b *testing.B) {
	data := importertest.ReadFile(b, ashtom)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		in := &importers.Input{Name: "export.xml", R: bytes.NewReader(data), Size: int64(len(data)), Options: map[string]string{"aggregate": "daily"}}
		if err := New().Import(context.Background(), in, &countSink{}); err != nil {
			b.Fatal(err)
		}
	}
}

// writeSynthetic writes an export of about size bytes: heart rate samples
// with metadata, step samples, sleep, blood pressure panels and workouts,
// over as many days as it takes. It returns the number of records the
// importer should produce in raw mode.
func writeSynthetic(w io.Writer, size int64) (want int, err error) {
	cw := &countWriter{w: w}
	fmt.Fprint(cw, `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
]>
<HealthData locale="en_US">
 <ExportDate value="2024-03-01 08:00:00 +0100"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1980-01-01" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet"/>
`)
	want = 1
	const dev = `&lt;&lt;HKDevice: 0x282a45810&gt;, name:Apple Watch, manufacturer:Apple, model:Watch, hardware:Watch6,1, software:10.1&gt;`
	for i := 0; cw.n < size; i++ {
		day := 1 + i/1440%28
		month := 1 + i/(1440*28)%12
		year := 2000 + i/(1440*28*12)
		ts := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:00 +0100", year, month, day, i/60%24, i%60)
		switch {
		case i%500 == 0:
			fmt.Fprintf(cw, ` <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Cuff" startDate="%[1]s" endDate="%[1]s">
  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Cuff" unit="mmHg" startDate="%[1]s" endDate="%[1]s" value="%[2]d"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Cuff" unit="mmHg" startDate="%[1]s" endDate="%[1]s" value="%[3]d"/>
 </Correlation>
`, ts, 110+i%30, 70+i%15)
			want++
		case i%700 == 0:
			fmt.Fprintf(cw, ` <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" totalDistance="5" totalDistanceUnit="km" totalEnergyBurned="300" totalEnergyBurnedUnit="kcal" sourceName="Watch" startDate="%[1]s" endDate="%[1]s">
  <MetadataEntry key="HKIndoorWorkout" value="0"/>
  <WorkoutRoute sourceName="Watch" startDate="%[1]s" endDate="%[1]s">
`, ts)
			for j := 0; j < 50; j++ {
				fmt.Fprintf(cw, "   <Location date=\"%s\" latitude=\"37.7\" longitude=\"-122.4\" altitude=\"21\" horizontalAccuracy=\"2\" verticalAccuracy=\"1\" course=\"-1\" speed=\"2.4\"/>\n", ts)
			}
			fmt.Fprint(cw, "  </WorkoutRoute>\n </Workout>\n")
			want++
		case i%3 == 0:
			fmt.Fprintf(cw, ` <Record type="HKQuantityTypeIdentifierStepCount" sourceName="iPhone" sourceVersion="17.1" device="%[1]s" unit="count" creationDate="%[2]s" startDate="%[2]s" endDate="%[2]s" value="%[3]d"/>
`, dev, ts, i%200)
			want++
		case i%97 == 0:
			fmt.Fprintf(cw, ` <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch" startDate="%[1]s" endDate="%[1]s" value="HKCategoryValueSleepAnalysisAsleepCore"/>
`, ts)
			want++
		default:
			fmt.Fprintf(cw, ` <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Apple Watch" sourceVersion="10.1" device="%[1]s" unit="count/min" creationDate="%[2]s" startDate="%[2]s" endDate="%[2]s" value="%[3]d">
  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>
 </Record>
`, dev, ts, 50+i%80)
			want++
		}
		if cw.err != nil {
			return want, cw.err
		}
	}
	fmt.Fprint(cw, "</HealthData>\n")
	return want, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// streamSynthetic imports a synthetic export of size bytes through a pipe,
// so that the file never exists in memory, and reports the records made,
// the highest heap seen and the bytes streamed.
func streamSynthetic(t testing.TB, size int64, opts map[string]string) (s *countSink, want int) {
	// What an import loads once (the terminology tables) is not what it
	// holds per record: a small import first, then the heap is measured
	// as growth over what the process holds when the stream starts.
	if size > 64<<10 {
		streamSynthetic(t, 64<<10, opts)
	}
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		n, err := writeSynthetic(pw, size)
		pw.CloseWithError(err)
		done <- n
	}()
	s = &countSink{every: 5000}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.base = ms.HeapAlloc
	err := New().Import(context.Background(), &importers.Input{Name: "export.xml", R: pr, Size: -1, Options: opts}, s)
	pr.CloseWithError(io.ErrClosedPipe)
	want = <-done
	if err != nil {
		t.Fatal(err)
	}
	return s, want
}

// BenchmarkImportAppleHealthStream streams a 100 MB synthetic export and
// reports the peak heap, which stays flat whatever the export's size.
func BenchmarkImportAppleHealthStream(b *testing.B) {
	const size = 100 << 20
	b.SetBytes(size)
	for b.Loop() {
		s, want := streamSynthetic(b, size, nil)
		if s.n != want {
			b.Fatalf("%d records, want %d", s.n, want)
		}
		b.ReportMetric(float64(s.maxHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(s.n), "records")
	}
}
