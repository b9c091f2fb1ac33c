package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// defaultMemoryLimit is the Go soft memory limit when neither GOMEMLIMIT nor
// a cgroup memory limit says otherwise.
const defaultMemoryLimit = 1 << 30

// memoryLimit is the soft memory limit tuneGC sets: defaultMemoryLimit, or
// four fifths of the memory limit of the cgroup the process runs in (a
// container's) when that is lower. Without it, the heap of a bridge in a
// 512 MiB container would grow towards 1 GiB (GOGC 400) and the kernel would
// kill the container first; the fifth left is for the rest of the process
// and for plugin processes, which share the container's limit.
func memoryLimit(root string) int64 {
	if cg, ok := cgroupMemoryLimit(root); ok && cg/5*4 < defaultMemoryLimit {
		return cg / 5 * 4
	}
	return defaultMemoryLimit
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup under
// root ("/" but in tests): cgroup v2's memory.max, or v1's
// memory.limit_in_bytes, in the process's own cgroup directory or, when
// that is not mounted where /proc/self/cgroup says (a container sees its
// own cgroup at the mount's root), at the root of the mount. ok is false
// when there is no limit, or none can be read.
func cgroupMemoryLimit(root string) (limit int64, ok bool) {
	v2, v1 := "", ""
	if f, err := os.Open(filepath.Join(root, "proc/self/cgroup")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// hierarchy-ID:controller-list:path
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				v2 = parts[2]
			case strings.Contains(","+parts[1]+",", ",memory,"):
				v1 = parts[2]
			}
		}
		_ = f.Close()
	}
	base := filepath.Join(root, "sys/fs/cgroup")
	for _, c := range []struct{ dir, file string }{
		{filepath.Join(base, v2), "memory.max"},
		{base, "memory.max"},
		{filepath.Join(base, "memory", v1), "memory.limit_in_bytes"},
		{filepath.Join(base, "memory"), "memory.limit_in_bytes"},
	} {
		data, err := os.ReadFile(filepath.Join(c.dir, c.file))
		if err != nil {
			continue
		}
		text := strings.TrimSpace(string(data))
		if text == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(text, 10, 64)
		// v1 writes a page-rounded MaxInt64 for no limit.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
