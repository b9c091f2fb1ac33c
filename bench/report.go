package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// MaxBridgeRSS is the target for the bridge's peak RSS in any scenario.
const MaxBridgeRSS = 200 << 20

// Machine describes where a run happened.
type Machine struct {
	NumCPU     int
	GOMAXPROCS int
	GoVersion  string
	OSArch     string
	CPUModel   string
	LoadBefore string // /proc/loadavg when the run started
	LoadAfter  string // and when it ended
}

// ThisMachine describes the machine this process runs on.
func ThisMachine() Machine {
	return Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OSArch:     runtime.GOOS + "/" + runtime.GOARCH,
		CPUModel:   cpuModel(),
		LoadBefore: loadAvg(),
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Report collects the results of one run.
type Report struct {
	Machine Machine
	Options Options
	Broker  string
	// Bridge describes the hookbridge binary (see Env.BridgeBuild).
	Bridge  string
	Started time.Time
	Results []Result
	// ColdStart holds the plugin cold starts, when they were measured.
	ColdStart *ColdStarts
}

// NewReport starts the report of a run in e.
func NewReport(e *Env) *Report {
	return &Report{Machine: ThisMachine(), Options: e.Options(), Broker: e.Broker(), Started: time.Now()}
}

// Add records r, replacing an earlier result of the same scenario.
func (r *Report) Add(res Result) {
	for i := range r.Results {
		if r.Results[i].Scenario.Letter == res.Scenario.Letter {
			r.Results[i] = res
			return
		}
	}
	r.Results = append(r.Results, res)
}

// Finish notes the load average at the end of the run and the bridge binary.
func (r *Report) Finish(e *Env) {
	r.Machine.LoadAfter = loadAvg()
	r.Bridge = e.BridgeBuild()
}

// Result returns the result of the scenario with letter, if it ran.
func (r *Report) Result(letter string) (Result, bool) {
	for _, res := range r.Results {
		if res.Scenario.Letter == letter {
			return res, true
		}
	}
	return Result{}, false
}

// Ratio returns the rate of scenario letter divided by the rate of of.
func (r *Report) Ratio(letter, of string) (float64, bool) {
	a, ok1 := r.Result(letter)
	b, ok2 := r.Result(of)
	if !ok1 || !ok2 || b.Rate() == 0 {
		return 0, false
	}
	return a.Rate() / b.Rate(), true
}

// Met reports whether res reached its target: ok is false when it has none
// or the scenario it is measured against did not run.
func (r *Report) Met(res Result) (met, ok bool) {
	t := res.Scenario.Target
	if t == nil {
		return false, false
	}
	ratio, ok := r.Ratio(res.Scenario.Letter, t.Of)
	if !ok {
		return false, false
	}
	return ratio >= t.Ratio, true
}

// PeakRSS returns the highest bridge peak RSS of the run, if a bridge ran.
func (r *Report) PeakRSS() (int64, bool) {
	var peak int64
	found := false
	for _, res := range r.Results {
		if res.Bridge != nil {
			peak, found = max(peak, res.Bridge.PeakRSS), true
		}
	}
	return peak, found
}

// Missed lists the targets the run did not reach, as "(d) ..." lines.
func (r *Report) Missed() []string {
	var out []string
	for _, res := range r.Results {
		if met, ok := r.Met(res); ok && !met {
			ratio, _ := r.Ratio(res.Scenario.Letter, res.Scenario.Target.Of)
			out = append(out, fmt.Sprintf("(%s) %s: %.2f x (%s), target %s", res.Scenario.Letter, res.Scenario.Title,
				ratio, res.Scenario.Target.Of, res.Scenario.Target))
		}
	}
	if peak, ok := r.PeakRSS(); ok && peak >= MaxBridgeRSS {
		out = append(out, fmt.Sprintf("bridge peak RSS %.1f MB, target < %d MB", mb(peak), MaxBridgeRSS>>20))
	}
	return out
}

// WriteTable prints the machine, the figures and their ratios, the targets,
// and a second table of details.
func (r *Report) WriteTable(w io.Writer) error {
	var out bytes.Buffer
	m := r.Machine
	o := r.Options
	fmt.Fprintf(&out, "machine: %d CPUs (nproc), GOMAXPROCS %d, %s, %s", m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OSArch)
	if m.CPUModel != "" {
		fmt.Fprintf(&out, ", %s", m.CPUModel)
	}
	fmt.Fprintf(&out, "\nload average: %s at start, %s at end\n", orNA(m.LoadBefore), orNA(m.LoadAfter))
	fmt.Fprintf(&out, "broker: %s\n", r.Broker)
	if r.Bridge != "" {
		fmt.Fprintf(&out, "bridge: hookbridge built from %s\n", r.Bridge)
	}
	fmt.Fprintf(&out, "workload: %s records x %d B, %d partitions, %s keys; one POST per record except (g, g2)\n",
		thousands(float64(o.Records)), o.RecordSize, o.Partitions, thousands(float64(o.Keys)))
	fmt.Fprintf(&out, "concurrency: %d (b, h, d-f, p); (g, g2) batch.max_messages %d, max_wait 20ms, route concurrency %d; "+
		"(p) examples/plugin-go, ENRICH_ACK_ONLY=1, instances {min: 1, max: %d}, concurrency_per_instance %d\n",
		o.Concurrency, o.BatchMessages, o.BatchConcurrency, o.PluginInstances, o.PluginConcurrency)
	if o.Runs > 1 {
		fmt.Fprintf(&out, "runs: every scenario drained %d times, in rounds; figures are from the run with the median rate\n", o.Runs)
	}
	fmt.Fprintln(&out)

	width := len("scenario")
	for _, res := range r.Results {
		width = max(width, len(label(res.Scenario)))
	}
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t records/s\t x(a)\t x(b)\t target\t met?\t\n", width, "scenario")
	for _, res := range r.Results {
		xa, xb := r.ratioCell(res, "a"), r.ratioCell(res, "b")
		target, met := "-", "-"
		if t := res.Scenario.Target; t != nil {
			target = t.String()
			if ok, known := r.Met(res); !known {
				met = "n/a"
			} else if ok {
				ratio, _ := r.Ratio(res.Scenario.Letter, t.Of)
				met = fmt.Sprintf("met (%.2f)", ratio)
			} else {
				ratio, _ := r.Ratio(res.Scenario.Letter, t.Of)
				met = fmt.Sprintf("MISSED (%.2f)", ratio)
			}
		}
		fmt.Fprintf(tw, "%-*s\t %s\t %s\t %s\t %s\t %s\t\n", width, label(res.Scenario),
			thousands(res.Rate()), xa, xb, target, met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if peak, ok := r.PeakRSS(); ok {
		verdict := "met"
		if peak >= MaxBridgeRSS {
			verdict = "MISSED"
		}
		fmt.Fprintf(&out, "\nbridge peak RSS (VmHWM, highest of %s): %.1f MB, target < %d MB: %s\n",
			strings.Join(r.bridgeLetters(), ", "), mb(peak), MaxBridgeRSS>>20, verdict)
	}
	r.writeComparisons(&out)
	r.writePlugin(&out)

	fmt.Fprintln(&out, "\ndetails: time runs from the start to the last record, 1st to the first one (start-up, group join);")
	fmt.Fprintln(&out, "CPU is user+system time during the drain: harness = this process (kfake, receiver, and the clients")
	fmt.Fprintln(&out, "of a, b, h, c, c2), bridge = the hookbridge process (for bx, hx, cx, ct, cw, cw2: the client's own process),")
	fmt.Fprintln(&out, "plugins = its plugin processes (p); CPU/rec = (bridge + plugins + harness) / records, which on a busy")
	fmt.Fprintln(&out, "machine says more than records/s; bridge cs/rec = context switches of all the bridge's (or client's)")
	fmt.Fprintln(&out, "threads per record (how often they slept and were woken; - for a client that exited first);")
	fmt.Fprintln(&out, "rec/req = records per request the receiver got; committed = offsets the bridge's group committed")
	fmt.Fprintln(&out, "(sum over partitions) after SIGTERM; (p) is counted through the bridge's /metrics, read every")
	fmt.Fprintln(&out, metricsPoll.String()+" and every "+metricsPollNear.String()+" near the end")
	tw = tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\t time\t 1st\t rate after 1st\t bridge CPU\t plugins CPU\t harness CPU\t CPU/rec\t bridge CPU/rec\t bridge cs/rec\t rec/req\t peak RSS\t dups\t committed\t exit\t")
	for _, res := range r.Results {
		after := "-"
		if d := res.Elapsed - res.FirstRecord; d > 0 && res.Records > 1 {
			after = thousands(float64(res.Records-1) / d.Seconds())
		}
		bcpu, pcpu, bper, cs, rss, committed, exit := "-", "-", "-", "-", "-", "-", "-"
		total := res.HarnessCPU
		if res.ClientCPU > 0 {
			bcpu = seconds(res.ClientCPU)
			bper = perRecord(res.ClientCPU, res.Records)
			total += res.ClientCPU
			if res.ClientSwitches > 0 && res.Records > 0 {
				cs = fmt.Sprintf("%.2f", float64(res.ClientSwitches)/float64(res.Records))
			}
		}
		if b := res.Bridge; b != nil {
			bcpu = seconds(b.CPU)
			bper = perRecord(b.CPU, res.Records)
			if res.Records > 0 {
				cs = fmt.Sprintf("%.2f", float64(b.Switches)/float64(res.Records))
			}
			rss = fmt.Sprintf("%.1f MB", mb(b.PeakRSS))
			exit = strconv.Itoa(b.ExitCode)
			total += b.CPU
			if len(b.Plugins) > 0 {
				pcpu = seconds(b.PluginCPU())
				total += b.PluginCPU()
			}
			if b.Committed >= 0 {
				committed = thousands(float64(b.Committed))
			}
		}
		perReq := "-"
		if res.Requests > 0 {
			perReq = fmt.Sprintf("%.2f", float64(res.Delivered+res.Duplicates)/float64(res.Requests))
		}
		fmt.Fprintf(tw, "(%s)\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %d\t %s\t %s\t\n", res.Scenario.Letter,
			seconds(res.Elapsed), seconds(res.FirstRecord), after, bcpu, pcpu, seconds(res.HarnessCPU),
			perRecord(total, res.Records), bper, cs, perReq, rss, res.Duplicates, committed, exit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.Runs > 1 {
		fmt.Fprintln(&out, "\nrecords/s of every run, in order:")
		for _, res := range r.Results {
			rates := make([]string, len(res.Rates))
			for i, v := range res.Rates {
				rates[i] = thousands(v)
			}
			fmt.Fprintf(&out, "  (%s) %s\n", res.Scenario.Letter, strings.Join(rates, "  "))
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

func label(s Scenario) string { return "(" + s.Letter + ") " + s.Title }

// bridgeLetters lists the scenarios of the run that ran the bridge.
func (r *Report) bridgeLetters() []string {
	var out []string
	for _, res := range r.Results {
		if res.Bridge != nil {
			out = append(out, res.Scenario.Letter)
		}
	}
	return out
}

// comparison is a row of the second table: a bridge scenario against a
// baseline. The targets come with their verdict; the others are
// information, for a like-for-like view.
type comparison struct {
	letter, of string
	what       string
}

// comparisons are the targets (d)/(b) and (f)/(c) next to the same
// bridge figures against the baselines that do the same job as the bridge:
// (h) and (c2) send the webhook contract's headers, as the bridge does. The
// rows of (hx) and (ct) against (b) and (c) are ceilings: what the bridge
// would reach if all it does besides its HTTP path cost nothing. (cw) against
// (c) shows a hand loop in a process of its own that matches (c) without
// net/http's Transport, and (f) against (cw2) the bridge against that loop
// sending the contract's headers.
var comparisons = []comparison{
	{"d", "b", "bridge (none) vs bare POSTs"},
	{"d", "bx", "bridge (none) vs bare POSTs from a process of their own"},
	{"d", "h", "bridge (none) vs POSTs with the contract's headers"},
	{"d", "hx", "bridge (none) vs its own webhook target alone, no Kafka"},
	{"hx", "b", "ceiling of (d): its webhook target alone vs bare POSTs"},
	{"f", "c", "bridge (partition) vs hand loop"},
	{"f", "cx", "bridge (partition) vs hand loop in a process of its own"},
	{"f", "c2", "bridge (partition) vs hand loop with the contract's headers"},
	{"f", "ct", "bridge (partition) vs hand loop with its own webhook target"},
	{"ct", "c", "ceiling of (f): hand loop with its webhook target vs hand loop"},
	{"cw", "c", "hand loop on connections of its own, own process, vs hand loop"},
	{"f", "cw2", "bridge (partition) vs that loop with the contract's headers"},
}

func (r *Report) writeComparisons(out *bytes.Buffer) {
	var rows []string
	for _, c := range comparisons {
		ratio, ok := r.Ratio(c.letter, c.of)
		if !ok {
			continue
		}
		res, _ := r.Result(c.letter)
		verdict := "information (not a target)"
		if t := res.Scenario.Target; t != nil && t.Of == c.of {
			if ratio >= t.Ratio {
				verdict = "issue target " + t.String() + ": met"
			} else {
				verdict = "issue target " + t.String() + ": MISSED"
			}
		}
		rows = append(rows, fmt.Sprintf("  (%s) / (%s)\t %.2f\t  %s\t %s", c.letter, c.of, ratio, c.what, verdict))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(out, "\nthe bridge against plain and contract-equivalent baselines (the targets stay those of the issue):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, row)
	}
	_ = tw.Flush()
}

// writePlugin prints (p)'s plugin processes and the cold starts.
func (r *Report) writePlugin(out *bytes.Buffer) {
	if res, ok := r.Result("p"); ok && res.Bridge != nil {
		var rss, cpu []string
		for _, p := range res.Bridge.Plugins {
			rss = append(rss, fmt.Sprintf("%.1f", mb(p.PeakRSS)))
			cpu = append(cpu, seconds(p.CPU))
		}
		fmt.Fprintf(out, "\n(p) plugin processes (children of the bridge): %d; peak RSS (VmHWM) each, MB: %s; CPU each: %s\n",
			len(res.Bridge.Plugins), orNA(strings.Join(rss, ", ")), orNA(strings.Join(cpu, ", ")))
	}
	cs := r.ColdStart
	if cs == nil || len(cs.Cold) == 0 {
		return
	}
	list := func(ds []time.Duration) string {
		s := make([]string, len(ds))
		for i, d := range ds {
			s[i] = ms(d)
		}
		return strings.Join(s, ", ")
	}
	var rss []string
	for _, v := range cs.PeakRSS {
		rss = append(rss, fmt.Sprintf("%.1f", mb(v)))
	}
	fmt.Fprintf(out, "plugin cold start (instances.min 0; one record produced -> counted in hookbridge_records_delivered_total, read every %s):\n", cs.Poll)
	fmt.Fprintf(out, "  cold: median %s of %d (%s)\n", ms(medianDuration(cs.Cold)), len(cs.Cold), list(cs.Cold))
	fmt.Fprintf(out, "  warm, the next record on the same process: median %s (%s)\n", ms(medianDuration(cs.Warm)), list(cs.Warm))
	fmt.Fprintf(out, "  peak RSS (VmHWM) of each cold-started process after its two records, MB: %s\n", strings.Join(rss, ", "))
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1e3) }

func (r *Report) ratioCell(res Result, of string) string {
	if ratio, ok := r.Ratio(res.Scenario.Letter, of); ok {
		return fmt.Sprintf("%.2f", ratio)
	}
	return "n/a"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func perRecord(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs", float64(d.Nanoseconds())/1e3/float64(n))
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
