package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// YAML short tags of resolved nodes.
const (
	tagNull  = "!!null"
	tagBool  = "!!bool"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagStr   = "!!str"
	tagMap   = "!!map"
	tagSeq   = "!!seq"
	tagMerge = "!!merge"
)

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	configType   = reflect.TypeFor[Config]()
)

// decoder walks a YAML node tree against the config struct types before it
// is decoded. On the way it expands environment variables in scalar values,
// records the line of every key path, and reports unknown keys, duplicate
// keys and values of the wrong type. It removes what it reports from the
// tree, so that the rest decodes and can be validated.
type decoder struct {
	file     string
	lookup   func(string) (string, bool)
	lines    map[string]int
	problems Errors
	// failed holds the paths of reported problems.
	failed map[string]bool
	// expanded holds the scalars already expanded, so that a scalar reached
	// twice through an alias is expanded once; true when the value changed.
	expanded map[*yaml.Node]bool
	// sources says, for the scalars whose value came from the environment,
	// where from: "from ${A}" or "from ${A}, ${B}".
	sources map[*yaml.Node]string
	// fromEnv holds the same for the key paths of those scalars, so that
	// validation does not show their values either.
	fromEnv map[string]string
	// defaulted holds the scalars whose every reference gives a default
	// (${NAME:-default}), and withDefault their key paths: a value left
	// empty there was asked for.
	defaulted   map[*yaml.Node]bool
	withDefault map[string]bool
	// visiting holds the mappings and sequences being walked, so that an
	// alias to one of them (a cycle) is refused.
	visiting map[*yaml.Node]bool
	// unexpanded holds the scalars whose expansion failed, so that a path
	// that reaches one again through an alias is marked failed too.
	unexpanded map[*yaml.Node]bool
	// visits counts the values walked, aliases followed; past budget the
	// document is refused as excessive aliasing (excessive), and the walk
	// stops.
	visits, budget int
	excessive      bool
	// walkedAs holds the type each node was first walked as: the walk
	// fixed the node for that type, and the paths that reach it through
	// aliases decode what it fixed.
	walkedAs map[*yaml.Node]reflect.Type
	// readOnly is above 0 while the walk follows an alias to a value that
	// was fixed for another type: it reports what is wrong there but
	// changes nothing (the change would break the value where it is of the
	// other type), noting that it would have in dirty.
	readOnly int
	dirty    bool
	// keep is the value of the alias being walked: when it fails as a
	// whole, the alias becomes null instead (keptFailed), and the value
	// stays as it is where it is written and used.
	keep       *yaml.Node
	keptFailed bool
	// keyRefs holds the paths of map keys that hold "${": variables are
	// not expanded in keys, so each gets advice.
	keyRefs []string
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	return &decoder{
		file:     file,
		lookup:   lookup,
		lines:    map[string]int{},
		failed:   map[string]bool{},
		expanded: map[*yaml.Node]bool{},
		sources:  map[*yaml.Node]string{},
		fromEnv:  map[string]string{},
		visiting: map[*yaml.Node]bool{},

		defaulted:   map[*yaml.Node]bool{},
		withDefault: map[string]bool{},

		unexpanded: map[*yaml.Node]bool{},
		budget:     minAliasBudget,
		walkedAs:   map[*yaml.Node]reflect.Type{},
	}
}

// Aliases let a small document stand for a huge one ("billion laughs"): a
// walk that follows them visits at most aliasBudgetRatio times the nodes
// of the document, and never fewer than minAliasBudget values (yaml.v3's own
// decoder allows 400,000 decoded values with nearly all of them through
// aliases).
const (
	minAliasBudget   = 400_000
	aliasBudgetRatio = 10
)

// spend counts one more value walked at n and reports whether the walk may
// go on: false once the budget is spent, which is reported once.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	if d.excessive {
		return false
	}
	if d.visits++; d.visits > d.budget {
		d.excessive = true
		d.addf(n.Line, path, "excessive aliasing: through its aliases the document stands for more than %d values", d.budget)
		return false
	}
	return true
}

// setBudget sizes the walk's budget for the document under root.
func (d *decoder) setBudget(root *yaml.Node) {
	d.budget = max(minAliasBudget, aliasBudgetRatio*countNodes(root))
}

// countNodes counts the nodes of a tree, aliases as one each.
func countNodes(n *yaml.Node) int {
	count := 1
	for _, c := range n.Content {
		count += countNodes(c)
	}
	return count
}

// addf records a problem at path, on line; on line 1 when the line is not
// known (0), as every problem of a file has one.
func (d *decoder) addf(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: max(line, 1), Path: path, Message: fmt.Sprintf(format, args...)})
	d.failed[path] = true
}

// value checks n against type t at path, and fixes the tree where it must.
func (d *decoder) value(n *yaml.Node, t reflect.Type, path string) {
	if !d.spend(n, path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, t, path)
		return
	}
	if n.Kind == yaml.ScalarNode {
		d.expand(n, t, path)
		if from, ok := d.sources[n]; ok {
			d.fromEnv[path] = from
		}
		if d.defaulted[n] {
			d.withDefault[path] = true
		}
		if n.ShortTag() == tagNull {
			return
		}
		if n.Style&yaml.TaggedStyle != 0 && !decodes(n, t) {
			d.addf(n.Line, path, "%s tagged %s does not decode as %s", d.quoteIfSafe(n, t), n.Tag, describeType(t))
			d.setNull(n)
			return
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	d.walking(n, t)
	switch {
	case t == durationType || t == byteSizeType:
		d.unit(n, t, path)
	case t.Kind() == reflect.Struct:
		if d.want(n, yaml.MappingNode, t, path) {
			d.mapping(n, path, keySet{typ: t, fields: yamlFields(t)})
		}
	case t.Kind() == reflect.Map:
		if d.want(n, yaml.MappingNode, t, path) {
			d.mapping(n, path, keySet{typ: t, elem: t.Elem()})
		}
	case t.Kind() == reflect.Slice:
		if d.want(n, yaml.SequenceNode, t, path) {
			d.sequence(n, t.Elem(), path)
		}
	default:
		d.scalar(n, t, path)
	}
}

// alias walks the node an alias refers to, refusing cycles. The value is
// left as it is where it is written and wherever else it is used: one that
// fails as a whole here (of the wrong kind, say) makes the alias null
// instead, and one fixed for another type is walked read-only, the alias
// becoming null, and its path failed, when it needed a change.
func (d *decoder) alias(n *yaml.Node, t reflect.Type, path string) {
	target := n.Alias
	switch {
	case target == nil:
		d.addf(n.Line, path, "unknown alias %q", n.Value)
		d.setNull(n)
	case d.visiting[target]:
		d.addf(n.Line, path, "alias %q refers to a value that contains it", n.Value)
		d.setNull(n)
	case d.fixedForOther(target, t):
		if d.readOnlyWalk(func() { d.value(target, t, path) }) {
			setNull(n)
			d.failed[path] = true
		}
	default:
		_, walked := d.walkedAs[target]
		keep, failed := d.keep, d.keptFailed
		d.keep, d.keptFailed = target, false
		d.value(target, t, path)
		if d.keptFailed {
			d.setNull(n) // unless n itself is in a read-only walk
			if !walked {
				delete(d.walkedAs, target) // it was not fixed for t
			}
		}
		d.keep, d.keptFailed = keep, failed
	}
}

// walking records that n is walked as type t, unless it was walked before
// or nothing the walk finds is changed.
func (d *decoder) walking(n *yaml.Node, t reflect.Type) {
	if _, ok := d.walkedAs[n]; !ok && d.readOnly == 0 {
		d.walkedAs[n] = t
	}
}

// fixedForOther reports whether the walk fixed n for a type other than t,
// outside a read-only walk (inside one nothing changes anyway).
func (d *decoder) fixedForOther(n *yaml.Node, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	was, ok := d.walkedAs[n]
	return ok && was != t && d.readOnly == 0
}

// readOnlyWalk runs walk read-only and reports whether it would have
// changed something (it reported why).
func (d *decoder) readOnlyWalk(walk func()) (dirty bool) {
	d.readOnly++
	walk()
	d.readOnly--
	dirty, d.dirty = d.dirty, false
	return dirty
}

// mayChange reports whether the walk may change the tree; in a read-only
// walk it notes that it would have.
func (d *decoder) mayChange() bool {
	if d.readOnly > 0 {
		d.dirty = true
		return false
	}
	return true
}

// setNull turns n into a null scalar, unless the walk is read-only or n is
// the value an alias refers to (keep), which the alias's caller replaces.
func (d *decoder) setNull(n *yaml.Node) {
	switch {
	case n == d.keep:
		d.keptFailed = true
	case d.mayChange():
		setNull(n)
	}
}

// decodes reports whether a scalar with an explicit tag (!!bool maybe,
// !!binary with bad base64) decodes as a value of type t: the walk trusts
// plain scalars' resolved tags, and yaml.v3 refuses these only when it
// decodes, where the problem would have neither its line nor its path.
func decodes(n *yaml.Node, t reflect.Type) bool {
	return n.Decode(reflect.New(t).Interface()) == nil
}

// expand expands environment variables in a scalar value, once. A value
// that changed and is not bound for a string is resolved again as if it had
// been written plainly (unless it has an explicit tag), so that "${PORT}"
// can fill an integer.
func (d *decoder) expand(n *yaml.Node, t reflect.Type, path string) {
	if _, done := d.expanded[n]; done {
		if d.unexpanded[n] {
			d.failed[path] = true
		}
		return
	}
	d.expanded[n] = false
	var names []string
	v, problems := expandEnv(n.Value, func(name string) (string, bool) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return d.lookup(name)
	})
	for _, p := range problems {
		d.addf(n.Line, path, "%s", p)
		d.unexpanded[n] = true
	}
	if v == n.Value {
		return
	}
	orig := n.Value
	n.Value = v
	d.expanded[n] = true
	if len(names) > 0 {
		d.sources[n] = fromVars(names)
		// As many defaults as references: in "${A:-}${B}" an empty B
		// was not asked for. (Only an empty value is judged by it, and
		// that holds references alone, whose defaults are empty.)
		d.defaulted[n] = strings.Count(orig, "${") == strings.Count(orig, ":-")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.String && n.Style&yaml.TaggedStyle == 0 {
		n.Tag = ""
		n.Style &^= yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	}
}

// want reports whether n is of kind; if it is not, it reports the problem
// and replaces n with null.
func (d *decoder) want(n *yaml.Node, kind yaml.Kind, t reflect.Type, path string) bool {
	if n.Kind == kind {
		return true
	}
	d.mismatch(n, t, path)
	return false
}

// mismatch reports that n is not of type t and replaces n with null.
func (d *decoder) mismatch(n *yaml.Node, t reflect.Type, path string) {
	d.addf(n.Line, path, "expected %s, got %s", describeType(t), d.describeNode(n, t))
	d.setNull(n)
}

// setNull turns n into a null scalar in place.
func setNull(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull, Line: n.Line, Column: n.Column}
}

// mapping checks the key/value pairs of a mapping node against keys. The
// values of merge keys ("<<") are walked first, so that the lines of explicit
// keys win.
func (d *decoder) mapping(n *yaml.Node, path string, keys keySet) {
	if !d.spend(n, path) {
		return
	}
	d.visiting[n] = true
	defer delete(d.visiting, n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.merge(n.Content[i+1], path, keys)
		}
	}
	seen := map[string]int{}
	var drop []bool // by pair, once one is to be dropped
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) && !d.entry(k, v, path, keys, seen) {
			if drop == nil {
				drop = make([]bool, len(n.Content)/2)
			}
			drop[i/2] = true
		}
	}
	if drop == nil || !d.mayChange() {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !drop[i/2] {
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
	}
	clear(n.Content[len(kept):])
	n.Content = kept
}

// entry checks one key/value pair and reports whether to keep it.
func (d *decoder) entry(k, v *yaml.Node, path string, keys keySet, seen map[string]int) bool {
	if k.Kind != yaml.ScalarNode {
		d.addf(k.Line, path, "keys must be plain strings")
		return false
	}
	child := joinKey(path, k.Value)
	if keys.fields == nil && isNull(k) {
		// yaml.v3 drops the entry of a null key from a map without a word:
		// a filter that loses its only header would let every record in.
		if k.Value == "" {
			child = path
		}
		d.addf(k.Line, child, "the key is null (~, null or none at all); quote it (\"null\") if it is a name")
		return false
	}
	if first, dup := seen[k.Value]; dup {
		d.addf(k.Line, child, "duplicate key (first at line %d)", first)
		return false
	}
	seen[k.Value] = k.Line
	t, ok := keys.lookup(k.Value)
	if !ok {
		d.addf(k.Line, child, "unknown key%s", suggest(k.Value, keys.names()))
		return false
	}
	d.lines[child] = k.Line
	if keys.fields == nil && strings.Contains(k.Value, "${") && !slices.Contains(d.keyRefs, child) {
		d.keyRefs = append(d.keyRefs, child)
	}
	d.value(v, t, child)
	return true
}

// merge walks the value of a "<<" key: a mapping, or a list of mappings,
// each possibly through an alias. Anything else (a list of lists, a value
// that contains the mapping it is merged into) is reported and replaced
// with an empty mapping, so that the rest decodes. The mappings of a list
// are walked last to first: a key in more than one takes its value from
// the first, as YAML merges them, and so must its line.
func (d *decoder) merge(v *yaml.Node, path string, keys keySet) {
	if !d.spend(v, path) {
		return
	}
	if v.Kind == yaml.SequenceNode && !d.visiting[v] {
		d.visiting[v] = true
		defer delete(d.visiting, v)
		for _, item := range slices.Backward(v.Content) {
			d.mergeItem(item, path, keys)
		}
		return
	}
	d.mergeItem(v, path, keys)
}

// mergeItem walks one mapping merged into the mapping at path, reporting
// anything else. An alias to a mapping fixed for another type is walked
// read-only; when it needed a change for this type, the alias becomes an
// empty mapping and the path failed, instead.
func (d *decoder) mergeItem(item *yaml.Node, path string, keys keySet) {
	m := d.mergedMapping(item)
	switch {
	case m == nil:
		d.badMerge(item, path)
	case item.Kind == yaml.AliasNode && d.fixedForOther(m, keys.typ):
		if d.readOnlyWalk(func() { d.mapping(m, path, keys) }) {
			emptyMapping(item)
			d.failed[path] = true
		}
	default:
		d.walking(m, keys.typ)
		d.mapping(m, path, keys)
	}
}

// mergedMapping returns the mapping n is, or that the alias n names, as the
// YAML decoder merges them; nil for anything else, and for a mapping being
// walked (one that would be merged into itself).
func (d *decoder) mergedMapping(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode || d.visiting[n] {
		return nil
	}
	return n
}

// badMerge reports a merge value that is not a mapping and replaces n with
// an empty mapping.
func (d *decoder) badMerge(n *yaml.Node, path string) {
	d.addf(n.Line, path, "the value of a merge key (<<) must be a mapping or a list of mappings, and may not contain the mapping it is merged into")
	if d.mayChange() {
		emptyMapping(n)
	}
}

// emptyMapping turns n into an empty mapping in place.
func emptyMapping(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.MappingNode, Tag: tagMap, Line: n.Line, Column: n.Column}
}

// isMergeKey reports whether k is the YAML merge key "<<".
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.Tag == tagMerge)
}

// sequence checks each item of a sequence node.
func (d *decoder) sequence(n *yaml.Node, elem reflect.Type, path string) {
	d.visiting[n] = true
	defer delete(d.visiting, n)
	for i, item := range n.Content {
		child := path + "[" + strconv.Itoa(i) + "]"
		d.lines[child] = item.Line
		if isNull(resolved(item)) {
			d.addf(item.Line, child, "expected %s, got null", describeType(elem))
		} else {
			d.value(item, elem, child)
			if !isNull(resolved(item)) {
				continue
			}
		}
		// A null item, written so (or through an alias) or left by a value
		// that failed: yaml.v3 would drop it, and the items after it would
		// move up an index, their problems then reported at the wrong path
		// or not at all. It takes the place of a zero value instead.
		if d.mayChange() {
			*item = zeroNode(elem, item)
		}
	}
}

// resolved is the node an alias refers to, or n itself.
func resolved(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// isNull reports whether n is a null scalar.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull
}

// zeroNode is a node that decodes as the zero value of t, at where's place.
func zeroNode(t reflect.Type, where *yaml.Node) yaml.Node {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := yaml.Node{Kind: yaml.ScalarNode, Line: where.Line, Column: where.Column}
	switch {
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		n.Kind, n.Tag = yaml.MappingNode, tagMap
	case t.Kind() == reflect.Slice:
		n.Kind, n.Tag = yaml.SequenceNode, tagSeq
	case t.Kind() == reflect.Bool:
		n.Tag, n.Value = tagBool, "false"
	case t.Kind() == reflect.String:
		n.Tag, n.Value = tagStr, ""
	default:
		n.Tag, n.Value = tagInt, "0"
	}
	return n
}

// unit checks a Duration or ByteSize scalar by parsing it.
func (d *decoder) unit(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		d.mismatch(n, t, path)
		return
	}
	var err error
	if t == durationType {
		_, err = parseDuration(n.Value)
	} else {
		_, err = parseByteSize(n.Value)
	}
	if err != nil {
		d.addf(n.Line, path, "%s", d.unitProblem(n, t, err))
		d.setNull(n)
	}
}

// unitProblem is the message of a duration or size that does not parse.
// When the value came from the environment, which may hold secrets, it
// says from which variables instead and repeats no part of the value.
func (d *decoder) unitProblem(n *yaml.Node, t reflect.Type, err error) string {
	from, ok := d.sources[n]
	if !ok {
		return err.Error()
	}
	if ue := (*unitError)(nil); errors.As(err, &ue) {
		return ue.hidden(from)
	}
	return fmt.Sprintf("expected %s (%s)", describeType(t), from)
}

// fromVars says which variables a value came from: "from ${A}, ${B}".
func fromVars(names []string) string {
	refs := make([]string, len(names))
	for i, name := range names {
		refs[i] = "${" + name + "}"
	}
	return "from " + strings.Join(refs, ", ")
}

// scalar checks a string, bool, integer or float value.
func (d *decoder) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		d.mismatch(n, t, path)
		return
	}
	tag := n.ShortTag()
	if numberOrBool(t) && t.Kind() != reflect.Bool && (tag == tagInt || tag == tagFloat) && leadingZeroRE.MatchString(n.Value) {
		what := d.quoteIfSafe(n, t)
		if from, ok := d.sources[n]; ok {
			what += " (" + from + ")"
		}
		d.addf(n.Line, path, "%s has a leading zero, which YAML 1.1 reads as octal (010 is 8) and YAML 1.2 as decimal: "+
			"write it without the zero, or with 0o for octal", what)
		d.setNull(n)
		return
	}
	ok := true
	switch t.Kind() {
	case reflect.String:
	case reflect.Bool:
		ok = tag == tagBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		ok = tag == tagInt && fitsInt(n.Value, t.Bits())
	case reflect.Float32, reflect.Float64:
		ok = tag == tagInt || tag == tagFloat
	}
	if !ok {
		d.mismatch(n, t, path)
	}
}

// leadingZeroRE matches an integer written with a leading zero, such as
// 010: yaml.v3 resolves it as octal, as YAML 1.1 does, where YAML 1.2 reads
// a decimal, so its value depends on who reads the file.
var leadingZeroRE = regexp.MustCompile(`^[-+]?0_*[0-9][0-9_]*$`)

// fitsInt reports whether an integer literal fits in bits.
func fitsInt(s string, bits int) bool {
	_, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, bits)
	return err == nil
}

// describeNode says what a node found where a value of type t belongs is.
// It quotes a scalar only when t is a boolean or a number, which no secret
// is kept in, and the scalar is short and was written in the file. Anywhere
// else (a list of signing secrets, a mapping of headers) the scalar may be
// a secret written in the wrong place, so only its kind is named.
func (d *decoder) describeNode(n *yaml.Node, t reflect.Type) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if !d.safeToQuote(n, t) {
		return describeTag(n.ShortTag())
	}
	return strconv.Quote(n.Value)
}

// safeToQuote reports whether a problem may quote the scalar n found where a
// value of type t belongs (see describeNode).
func (d *decoder) safeToQuote(n *yaml.Node, t reflect.Type) bool {
	return numberOrBool(t) && !d.expanded[n] && len(n.Value) <= 40
}

// quoteIfSafe quotes n's value when safeToQuote allows, and says "the
// value" otherwise.
func (d *decoder) quoteIfSafe(n *yaml.Node, t reflect.Type) string {
	if d.safeToQuote(n, t) {
		return strconv.Quote(n.Value)
	}
	return "the value"
}

// numberOrBool reports whether t is a boolean or a number (a duration or a
// size is not: those are checked by unit).
func numberOrBool(t reflect.Type) bool {
	if t == durationType || t == byteSizeType {
		return false
	}
	switch t.Kind() {
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// describeTag names a resolved scalar tag.
func describeTag(tag string) string {
	switch tag {
	case tagBool:
		return "a boolean"
	case tagInt:
		return "an integer"
	case tagFloat:
		return "a number"
	case tagStr:
		return "a string"
	}
	return "a " + strings.TrimPrefix(tag, "!!") + " value"
}

// describeType names what a value of type t is written as.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 10s"
	case t == byteSizeType:
		return "a size such as 64MiB"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a string"
}

// keySet is what keys a mapping may have: the fields of a struct, or any
// key of a map.
type keySet struct {
	typ    reflect.Type            // the struct or map type
	fields map[string]reflect.Type // by YAML key; nil for a map
	elem   reflect.Type            // the value type of a map
}

// lookup returns the type of key's value, or false for an unknown key.
func (k keySet) lookup(key string) (reflect.Type, bool) {
	if k.fields == nil {
		return k.elem, true
	}
	t, ok := k.fields[key]
	return t, ok
}

// names returns the keys of a struct, sorted.
func (k keySet) names() []string {
	return slices.Sorted(maps.Keys(k.fields))
}

// yamlFields maps the YAML keys of a struct type to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// joinKey appends a mapping key to a key path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
