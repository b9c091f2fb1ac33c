package writer

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hookbridge/hookbridge/sdk"
)

// Permanent reports whether a failed write can never succeed for this
// record, so that retrying is pointless and it is dead-lettered:
//
//   - WRONGTYPE: the record's key holds another type (a string where the
//     stream should be); the key template maps this record there, so every
//     attempt fails the same way;
//   - a value larger than the server accepts: "Protocol error: invalid
//     bulk length" when Redis answers before it closes the connection on
//     an argument above proto-max-bulk-len (it usually closes it while the
//     client still writes, which Handler.tooLarge checks for before the
//     write), or "string exceeds maximum allowed size" for a string grown
//     past 512 MB.
//
// Everything else is retryable: the network, timeouts, the pool, and the
// server errors that are about the server rather than the record (LOADING,
// BUSY, READONLY after a failover, OOM, MASTERDOWN, TRYAGAIN, max clients,
// NOAUTH/WRONGPASS/NOPERM). Retrying those keeps the record, and the
// bridge's breaker pauses the route while Redis is unusable instead of
// dead-lettering everything.
func Permanent(err error) bool {
	var rerr redis.Error
	if err == nil || !errors.As(err, &rerr) || errors.Is(err, redis.Nil) {
		return false
	}
	msg := rerr.Error()
	// Redis 7 keeps an error's prefix when a script's redis.call fails
	// ("WRONGTYPE ... script: ..."); older servers wrap it
	// ("ERR Error running script ...: WRONGTYPE ..."): look anywhere.
	return strings.Contains(msg, "WRONGTYPE") ||
		strings.Contains(msg, "string exceeds maximum allowed size") ||
		strings.Contains(msg, "invalid bulk length")
}

// classify marks err permanent for the bridge when Permanent says so.
func classify(err error) error {
	if Permanent(err) {
		return sdk.Permanent(err)
	}
	return err
}
