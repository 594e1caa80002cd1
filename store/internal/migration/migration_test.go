package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestMustLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0001_init.sql": {Data: []byte("CREATE TABLE a (x INT);")},
		"m/0002_more.sql": {Data: []byte("CREATE TABLE b (y INT);")},
	}
	ms := MustLoad(fsys, "m", "test")
	if len(ms) != 2 || ms[1].Version != 2 || ms[1].Name != "0002_more.sql" || !strings.Contains(ms[0].SQL, "TABLE a") {
		t.Fatalf("MustLoad = %+v", ms)
	}
	for name, bad := range map[string]fstest.MapFS{
		"gap":     {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"no name": {"m/one.sql": {}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			MustLoad(bad, "m", "test")
		}()
	}
}
