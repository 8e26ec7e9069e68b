//! COMMAND DOCS content: a one-line summary and the argument syntax of each command, written in
//! the compact notation of the Redis manual (`key [NX|XX] [EX seconds|PX milliseconds]`,
//! `key...` for repeated arguments) and turned into Redis's argument-doc maps. redis-cli builds
//! `HELP <command>` and its typing hints from these. Pure.

use bytes::Bytes;

use crate::engine::protocol::reply::Reply;

/// (full command name, summary, since, argument syntax).
const DOCS: &[(&str, &str, &str, &str)] = &[
    // strings
    ("get", "Returns the string value of a key.", "1.0.0", "key"),
    ("set", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "1.0.0",
        "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]"),
    ("setnx", "Set the string value of a key only when the key doesn't exist.", "1.0.0", "key value"),
    ("setex", "Sets the string value and expiration time of a key.", "2.0.0", "key seconds value"),
    ("psetex", "Sets both string value and expiration time in milliseconds of a key.", "2.6.0", "key milliseconds value"),
    ("getset", "Returns the previous string value of a key after setting it to a new value.", "1.0.0", "key value"),
    ("getdel", "Returns the string value of a key after deleting the key.", "6.2.0", "key"),
    ("getex", "Returns the string value of a key after setting its expiration time.", "6.2.0",
        "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]"),
    ("mget", "Atomically returns the string values of one or more keys.", "1.0.0", "key..."),
    ("mset", "Atomically creates or modifies the string values of one or more keys.", "1.0.1", "(key value)..."),
    ("msetnx", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "1.0.1", "(key value)..."),
    ("incr", "Increments the integer value of a key by one.", "1.0.0", "key"),
    ("decr", "Decrements the integer value of a key by one.", "1.0.0", "key"),
    ("incrby", "Increments the integer value of a key by a number.", "1.0.0", "key increment"),
    ("decrby", "Decrements a number from the integer value of a key.", "1.0.0", "key decrement"),
    ("incrbyfloat", "Increment the floating point value of a key by a number.", "2.6.0", "key increment"),
    ("append", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "2.0.0", "key value"),
    ("strlen", "Returns the length of a string value.", "2.2.0", "key"),
    ("getrange", "Returns a substring of the string stored at a key.", "2.4.0", "key start end"),
    ("setrange", "Overwrites a part of a string value with another by an offset.", "2.2.0", "key offset value"),
    ("setbit", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", "2.2.0", "key offset value"),
    ("getbit", "Returns a bit value by offset.", "2.2.0", "key offset"),
    ("bitcount", "Counts the number of set bits (population counting) in a string.", "2.6.0", "key [start end [BYTE|BIT]]"),
    ("bitpos", "Finds the first set (1) or clear (0) bit in a string.", "2.8.7", "key bit [start [end [BYTE|BIT]]]"),
    ("bitop", "Performs bitwise operations on multiple strings, and stores the result.", "2.6.0", "AND|OR|XOR|NOT destkey key..."),
    ("pfadd", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", "2.8.9", "key [element...]"),
    ("pfcount", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", "2.8.9", "key..."),
    ("pfmerge", "Merges one or more HyperLogLog values into a single key.", "2.8.9", "destkey [sourcekey...]"),
    // keys
    ("del", "Deletes one or more keys.", "1.0.0", "key..."),
    ("unlink", "Asynchronously deletes one or more keys.", "4.0.0", "key..."),
    ("exists", "Determines whether one or more keys exist.", "1.0.0", "key..."),
    ("type", "Determines the type of value stored at a key.", "1.0.0", "key"),
    ("keys", "Returns all key names that match a pattern.", "1.0.0", "pattern"),
    ("scan", "Iterates over the key names in the database.", "2.8.0", "cursor [MATCH pattern] [COUNT count] [TYPE type]"),
    ("randomkey", "Returns a random key name from the database.", "1.0.0", ""),
    ("rename", "Renames a key and overwrites the destination.", "1.0.0", "key newkey"),
    ("renamenx", "Renames a key only when the target key name doesn't exist.", "1.0.0", "key newkey"),
    ("move", "Moves a key to another database.", "1.0.0", "key db"),
    ("copy", "Copies the value of a key to a new key.", "6.2.0", "source destination [DB destination-db] [REPLACE]"),
    ("expire", "Sets the expiration time of a key in seconds.", "1.0.0", "key seconds [NX|XX|GT|LT]"),
    ("pexpire", "Sets the expiration time of a key in milliseconds.", "2.6.0", "key milliseconds [NX|XX|GT|LT]"),
    ("expireat", "Sets the expiration time of a key to a Unix timestamp.", "1.2.0", "key unix-time-seconds [NX|XX|GT|LT]"),
    ("pexpireat", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "2.6.0", "key unix-time-milliseconds [NX|XX|GT|LT]"),
    ("ttl", "Returns the expiration time in seconds of a key.", "1.0.0", "key"),
    ("pttl", "Returns the expiration time in milliseconds of a key.", "2.6.0", "key"),
    ("expiretime", "Returns the expiration time of a key as a Unix timestamp.", "7.0.0", "key"),
    ("pexpiretime", "Returns the expiration time of a key as a Unix milliseconds timestamp.", "7.0.0", "key"),
    ("persist", "Removes the expiration time of a key.", "2.2.0", "key"),
    ("touch", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "3.2.1", "key..."),
    ("dump", "Returns a serialized representation of the value stored at a key.", "2.6.0", "key"),
    ("restore", "Creates a key from the serialized representation of a value.", "2.6.0",
        "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]"),
    ("object", "A container for object introspection commands.", "2.2.3", ""),
    ("object|encoding", "Returns the internal encoding of a Redis object.", "2.2.3", "key"),
    ("object|freq", "Returns the logarithmic access frequency counter of a Redis object.", "4.0.0", "key"),
    ("object|idletime", "Returns the time since the last access to a Redis object.", "2.2.3", "key"),
    ("object|refcount", "Returns the reference count of a value of a key.", "2.2.3", "key"),
    ("object|help", "Returns helpful text about the different subcommands.", "6.2.0", ""),
    ("select", "Changes the selected database.", "1.0.0", "index"),
    ("swapdb", "Swaps two Redis databases.", "4.0.0", "index1 index2"),
    ("flushdb", "Removes all keys from the current database.", "1.0.0", "[ASYNC|SYNC]"),
    ("flushall", "Removes all keys from all databases.", "1.0.0", "[ASYNC|SYNC]"),
    ("dbsize", "Returns the number of keys in the database.", "1.0.0", ""),
    // hashes
    ("hset", "Creates or modifies the value of a field in a hash.", "2.0.0", "key (field value)..."),
    ("hsetnx", "Sets the value of a field in a hash only when the field doesn't exist.", "2.0.0", "key field value"),
    ("hget", "Returns the value of a field in a hash.", "2.0.0", "key field"),
    ("hmset", "Sets the values of multiple fields.", "2.0.0", "key (field value)..."),
    ("hmget", "Returns the values of all fields in a hash.", "2.0.0", "key field..."),
    ("hdel", "Deletes one or more fields and their values from a hash.", "2.0.0", "key field..."),
    ("hexists", "Determines whether a field exists in a hash.", "2.0.0", "key field"),
    ("hlen", "Returns the number of fields in a hash.", "2.0.0", "key"),
    ("hstrlen", "Returns the length of the value of a field.", "3.2.0", "key field"),
    ("hkeys", "Returns all fields in a hash.", "2.0.0", "key"),
    ("hvals", "Returns all values in a hash.", "2.0.0", "key"),
    ("hgetall", "Returns all fields and values in a hash.", "2.0.0", "key"),
    ("hincrby", "Increments the integer value of a field in a hash by a number.", "2.0.0", "key field increment"),
    ("hincrbyfloat", "Increments the floating point value of a field by a number.", "2.6.0", "key field increment"),
    ("hrandfield", "Returns one or more random fields from a hash.", "6.2.0", "key [count [WITHVALUES]]"),
    ("hscan", "Iterates over fields and values of a hash.", "2.8.0", "key cursor [MATCH pattern] [COUNT count]"),
    // lists
    ("lpush", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0", "key element..."),
    ("rpush", "Appends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0", "key element..."),
    ("lpushx", "Prepends one or more elements to a list only when the list exists.", "2.2.0", "key element..."),
    ("rpushx", "Appends an element to a list only when the list exists.", "2.2.0", "key element..."),
    ("lpop", "Returns the first elements in a list after removing it.", "1.0.0", "key [count]"),
    ("rpop", "Returns and removes the last elements of a list.", "1.0.0", "key [count]"),
    ("llen", "Returns the length of a list.", "1.0.0", "key"),
    ("lrange", "Returns a range of elements from a list.", "1.0.0", "key start stop"),
    ("lindex", "Returns an element from a list by its index.", "1.0.0", "key index"),
    ("lset", "Sets the value of an element in a list by its index.", "1.0.0", "key index element"),
    ("linsert", "Inserts an element before or after another element in a list.", "2.2.0", "key BEFORE|AFTER pivot element"),
    ("lrem", "Removes elements from a list.", "1.0.0", "key count element"),
    ("ltrim", "Removes elements from both ends a list.", "1.0.0", "key start stop"),
    ("lpos", "Returns the index of matching elements in a list.", "6.0.6", "key element [RANK rank] [COUNT num-matches] [MAXLEN len]"),
    ("lmove", "Returns an element after popping it from one list and pushing it to another.", "6.2.0", "source destination LEFT|RIGHT LEFT|RIGHT"),
    ("rpoplpush", "Returns the last element of a list after removing and pushing it to another list.", "1.2.0", "source destination"),
    ("lmpop", "Returns multiple elements from a list after removing them.", "7.0.0", "numkeys key... LEFT|RIGHT [COUNT count]"),
    ("blpop", "Removes and returns the first element in a list. Blocks until an element is available otherwise.", "2.0.0", "key... timeout"),
    ("brpop", "Removes and returns the last element in a list. Blocks until an element is available otherwise.", "2.0.0", "key... timeout"),
    ("blmove", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise.", "6.2.0",
        "source destination LEFT|RIGHT LEFT|RIGHT timeout"),
    ("brpoplpush", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise.", "2.2.0",
        "source destination timeout"),
    ("blmpop", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise.", "7.0.0",
        "timeout numkeys key... LEFT|RIGHT [COUNT count]"),
    // sets
    ("sadd", "Adds one or more members to a set. Creates the key if it doesn't exist.", "1.0.0", "key member..."),
    ("srem", "Removes one or more members from a set.", "1.0.0", "key member..."),
    ("smembers", "Returns all members of a set.", "1.0.0", "key"),
    ("sismember", "Determines whether a member belongs to a set.", "1.0.0", "key member"),
    ("smismember", "Determines whether multiple members belong to a set.", "6.2.0", "key member..."),
    ("scard", "Returns the number of members in a set.", "1.0.0", "key"),
    ("spop", "Returns one or more random members from a set after removing them.", "1.0.0", "key [count]"),
    ("srandmember", "Get one or multiple random members from a set.", "1.0.0", "key [count]"),
    ("smove", "Moves a member from one set to another.", "1.0.0", "source destination member"),
    ("sinter", "Returns the intersect of multiple sets.", "1.0.0", "key..."),
    ("sintercard", "Returns the number of members of the intersect of multiple sets.", "7.0.0", "numkeys key... [LIMIT limit]"),
    ("sinterstore", "Stores the intersect of multiple sets in a key.", "1.0.0", "destination key..."),
    ("sunion", "Returns the union of multiple sets.", "1.0.0", "key..."),
    ("sunionstore", "Stores the union of multiple sets in a key.", "1.0.0", "destination key..."),
    ("sdiff", "Returns the difference of multiple sets.", "1.0.0", "key..."),
    ("sdiffstore", "Stores the difference of multiple sets in a key.", "1.0.0", "destination key..."),
    ("sscan", "Iterates over members of a set.", "2.8.0", "key cursor [MATCH pattern] [COUNT count]"),
    // streams
    ("xadd", "Appends a new message to a stream. Creates the key if it doesn't exist.", "5.0.0",
        "key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id (field value)..."),
    ("xrange", "Returns the messages from a stream within a range of IDs.", "5.0.0", "key start end [COUNT count]"),
    ("xrevrange", "Returns the messages from a stream within a range of IDs in reverse order.", "5.0.0", "key end start [COUNT count]"),
    ("xlen", "Return the number of messages in a stream.", "5.0.0", "key"),
    ("xdel", "Returns the number of messages after removing them from a stream.", "5.0.0", "key id..."),
    ("xtrim", "Deletes messages from the beginning of a stream.", "5.0.0", "key MAXLEN|MINID [=|~] threshold [LIMIT count]"),
    ("xread", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", "5.0.0",
        "[COUNT count] [BLOCK milliseconds] STREAMS key... id..."),
    ("xreadgroup", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", "5.0.0",
        "GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key... id..."),
    ("xack", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", "5.0.0", "key group id..."),
    ("xpending", "Returns the information and entries from a stream consumer group's pending entries list.", "5.0.0",
        "key group [[IDLE min-idle-time] start end count [consumer]]"),
    ("xclaim", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", "5.0.0",
        "key group consumer min-idle-time id... [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]"),
    ("xautoclaim", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", "6.2.0",
        "key group consumer min-idle-time start [COUNT count] [JUSTID]"),
    ("xsetid", "An internal command for replicating stream values.", "5.0.0",
        "key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]"),
    ("xgroup", "A container for consumer groups commands.", "5.0.0", ""),
    ("xinfo", "A container for stream introspection commands.", "5.0.0", ""),
    ("xgroup|create", "Creates a consumer group.", "5.0.0", "key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]"),
    ("xgroup|setid", "Sets the last-delivered ID of a consumer group.", "5.0.0", "key group id|$ [ENTRIESREAD entries-read]"),
    ("xgroup|destroy", "Destroys a consumer group.", "5.0.0", "key group"),
    ("xgroup|createconsumer", "Creates a consumer in a consumer group.", "6.2.0", "key group consumer"),
    ("xgroup|delconsumer", "Deletes a consumer from a consumer group.", "5.0.0", "key group consumer"),
    ("xgroup|help", "Returns helpful text about the different subcommands.", "5.0.0", ""),
    ("xinfo|stream", "Returns information about a stream.", "5.0.0", "key [FULL [COUNT count]]"),
    ("xinfo|groups", "Returns a list of the consumer groups of a stream.", "5.0.0", "key"),
    ("xinfo|consumers", "Returns a list of the consumers in a consumer group.", "5.0.0", "key group"),
    ("xinfo|help", "Returns helpful text about the different subcommands.", "5.0.0", ""),
    // sorted sets
    ("zadd", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", "1.2.0",
        "key [NX|XX] [GT|LT] [CH] [INCR] (score member)..."),
    ("zincrby", "Increments the score of a member in a sorted set.", "1.2.0", "key increment member"),
    ("zrem", "Removes one or more members from a sorted set.", "1.2.0", "key member..."),
    ("zcard", "Returns the number of members in a sorted set.", "1.2.0", "key"),
    ("zscore", "Returns the score of a member in a sorted set.", "1.2.0", "key member"),
    ("zmscore", "Returns the score of one or more members in a sorted set.", "6.2.0", "key member..."),
    ("zrank", "Returns the index of a member in a sorted set ordered by ascending scores.", "2.0.0", "key member"),
    ("zrevrank", "Returns the index of a member in a sorted set ordered by descending scores.", "2.0.0", "key member"),
    ("zcount", "Returns the count of members in a sorted set that have scores within a range.", "2.0.0", "key min max"),
    ("zlexcount", "Returns the number of members in a sorted set within a lexicographical range.", "2.8.9", "key min max"),
    ("zrange", "Returns members in a sorted set within a range of indexes.", "1.2.0",
        "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"),
    ("zrangestore", "Stores a range of members from sorted set in a key.", "6.2.0",
        "dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]"),
    ("zrevrange", "Returns members in a sorted set within a range of indexes in reverse order.", "1.2.0", "key start stop [WITHSCORES]"),
    ("zrangebyscore", "Returns members in a sorted set within a range of scores.", "1.0.5", "key min max [WITHSCORES] [LIMIT offset count]"),
    ("zrevrangebyscore", "Returns members in a sorted set within a range of scores in reverse order.", "2.2.0", "key max min [WITHSCORES] [LIMIT offset count]"),
    ("zrangebylex", "Returns members in a sorted set within a lexicographical range.", "2.8.9", "key min max [LIMIT offset count]"),
    ("zrevrangebylex", "Returns members in a sorted set within a lexicographical range in reverse order.", "2.8.9", "key max min [LIMIT offset count]"),
    ("zremrangebyrank", "Removes members in a sorted set within a range of indexes.", "2.0.0", "key start stop"),
    ("zremrangebyscore", "Removes members in a sorted set within a range of scores.", "1.2.0", "key min max"),
    ("zremrangebylex", "Removes members in a sorted set within a lexicographical range.", "2.8.9", "key min max"),
    ("zpopmin", "Returns the lowest-scoring members from a sorted set after removing them.", "5.0.0", "key [count]"),
    ("zpopmax", "Returns the highest-scoring members from a sorted set after removing them.", "5.0.0", "key [count]"),
    ("bzpopmin", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise.", "5.0.0", "key... timeout"),
    ("bzpopmax", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.", "5.0.0", "key... timeout"),
    ("zmpop", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them.", "7.0.0", "numkeys key... MIN|MAX [COUNT count]"),
    ("bzmpop", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise.", "7.0.0",
        "timeout numkeys key... MIN|MAX [COUNT count]"),
    ("zrandmember", "Returns one or more random members from a sorted set.", "6.2.0", "key [count [WITHSCORES]]"),
    ("zunion", "Returns the union of multiple sorted sets.", "6.2.0", "numkeys key... [WEIGHTS weight...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]"),
    ("zinter", "Returns the intersect of multiple sorted sets.", "6.2.0", "numkeys key... [WEIGHTS weight...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]"),
    ("zdiff", "Returns the difference between multiple sorted sets.", "6.2.0", "numkeys key... [WITHSCORES]"),
    ("zunionstore", "Stores the union of multiple sorted sets in a key.", "2.0.0", "destination numkeys key... [WEIGHTS weight...] [AGGREGATE SUM|MIN|MAX]"),
    ("zinterstore", "Stores the intersect of multiple sorted sets in a key.", "2.0.0", "destination numkeys key... [WEIGHTS weight...] [AGGREGATE SUM|MIN|MAX]"),
    ("zdiffstore", "Stores the difference of multiple sorted sets in a key.", "6.2.0", "destination numkeys key..."),
    ("zintercard", "Returns the number of members of the intersect of multiple sorted sets.", "7.0.0", "numkeys key... [LIMIT limit]"),
    ("zscan", "Iterates over members and scores of a sorted set.", "2.8.0", "key cursor [MATCH pattern] [COUNT count]"),
    // geo
    ("geoadd", "Add one or more geospatial items in the geospatial index represented using a sorted set", "3.2.0",
        "key [NX|XX] [CH] (longitude latitude member)..."),
    ("geodist", "Returns the distance between two members of a geospatial index", "3.2.0", "key member1 member2 [M|KM|FT|MI]"),
    ("geohash", "Returns members of a geospatial index as standard geohash strings", "3.2.0", "key [member...]"),
    ("geopos", "Returns longitude and latitude of members of a geospatial index", "3.2.0", "key [member...]"),
    ("georadius", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", "3.2.0",
        "key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]"),
    ("georadius_ro", "A read-only variant for GEORADIUS", "3.2.10",
        "key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]"),
    ("georadiusbymember", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", "3.2.0",
        "key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]"),
    ("georadiusbymember_ro", "A read-only variant for GEORADIUSBYMEMBER", "3.2.10",
        "key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]"),
    ("geosearch", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", "6.2.0",
        "key FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]"),
    ("geosearchstore", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", "6.2.0",
        "destination source FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] [COUNT count [ANY]] [STOREDIST]"),
    // transactions
    ("multi", "Starts a transaction.", "1.2.0", ""),
    ("exec", "Executes all commands in a transaction.", "1.2.0", ""),
    ("discard", "Discards a transaction.", "2.0.0", ""),
    ("watch", "Monitors changes to keys to determine the execution of a transaction.", "2.2.0", "key..."),
    ("unwatch", "Forgets about watched keys of a transaction.", "2.2.0", ""),
    // pub/sub
    ("subscribe", "Listens for messages published to channels.", "2.0.0", "channel..."),
    ("unsubscribe", "Stops listening to messages posted to channels.", "2.0.0", "[channel...]"),
    ("psubscribe", "Listens for messages published to channels that match one or more patterns.", "2.0.0", "pattern..."),
    ("punsubscribe", "Stops listening to messages published to channels that match one or more patterns.", "2.0.0", "[pattern...]"),
    ("publish", "Posts a message to a channel.", "2.0.0", "channel message"),
    ("pubsub", "A container for Pub/Sub commands.", "2.8.0", ""),
    ("pubsub|channels", "Returns the active channels.", "2.8.0", "[pattern]"),
    ("pubsub|numsub", "Returns a count of subscribers to channels.", "2.8.0", "[channel...]"),
    ("pubsub|numpat", "Returns a count of unique pattern subscriptions.", "2.8.0", ""),
    ("pubsub|help", "Returns helpful text about the different subcommands.", "6.2.0", ""),
    // scripting
    ("eval", "Executes a server-side Lua script.", "2.6.0", "script numkeys [key...] [arg...]"),
    ("evalsha", "Executes a server-side Lua script by SHA1 digest.", "2.6.0", "sha1 numkeys [key...] [arg...]"),
    ("eval_ro", "Executes a read-only server-side Lua script.", "7.0.0", "script numkeys [key...] [arg...]"),
    ("evalsha_ro", "Executes a read-only server-side Lua script by SHA1 digest.", "7.0.0", "sha1 numkeys [key...] [arg...]"),
    ("script", "A container for Lua scripts management commands.", "2.6.0", ""),
    ("script|load", "Loads a server-side Lua script to the script cache.", "2.6.0", "script"),
    ("script|exists", "Determines whether server-side Lua scripts exist in the script cache.", "2.6.0", "sha1..."),
    ("script|flush", "Removes all server-side Lua scripts from the script cache.", "2.6.0", "[ASYNC|SYNC]"),
    ("script|kill", "Terminates a server-side Lua script during execution.", "2.6.0", ""),
    ("script|help", "Returns helpful text about the different subcommands.", "5.0.0", ""),
    ("fcall", "Invokes a function.", "7.0.0", "function numkeys [key...] [arg...]"),
    ("fcall_ro", "Invokes a read-only function.", "7.0.0", "function numkeys [key...] [arg...]"),
    ("function", "A container for function commands.", "7.0.0", ""),
    ("function|load", "Creates a library.", "7.0.0", "[REPLACE] function-code"),
    ("function|list", "Returns information about all libraries.", "7.0.0", "[LIBRARYNAME library-name-pattern] [WITHCODE]"),
    ("function|delete", "Deletes a library and its functions.", "7.0.0", "library-name"),
    ("function|flush", "Deletes all libraries and functions.", "7.0.0", "[ASYNC|SYNC]"),
    ("function|help", "Returns helpful text about the different subcommands.", "7.0.0", ""),
    // connection
    ("ping", "Returns the server's liveliness response.", "1.0.0", "[message]"),
    ("echo", "Returns the given string.", "1.0.0", "message"),
    ("quit", "Closes the connection.", "1.0.0", ""),
    ("reset", "Resets the connection.", "6.2.0", ""),
    ("auth", "Authenticates the connection.", "1.0.0", "[username] password"),
    ("hello", "Handshakes with the Redis server.", "6.0.0", "[protover [AUTH username password] [SETNAME clientname]]"),
    ("cluster", "A container for Redis Cluster commands.", "3.0.0", ""),
    ("readonly", "Enables read-only queries for a connection to a Redis Cluster replica node.", "3.0.0", ""),
    ("readwrite", "Enables read-write queries for a connection to a Reids Cluster replica node.", "3.0.0", ""),
    ("client", "A container for client connection commands.", "2.4.0", ""),
    ("client|id", "Returns the unique client ID of the connection.", "5.0.0", ""),
    ("client|info", "Returns information about the connection.", "6.2.0", ""),
    ("client|list", "Lists open connections.", "2.4.0", "[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id...]"),
    ("client|kill", "Terminates open connections.", "2.4.0",
        "ip:port|[ID client-id] [TYPE NORMAL|MASTER|SLAVE|REPLICA|PUBSUB] [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME YES|NO]"),
    ("client|setname", "Sets the connection name.", "2.6.9", "connection-name"),
    ("client|getname", "Returns the name of the connection.", "2.6.9", ""),
    ("client|setinfo", "Sets information specific to the client or connection.", "7.2.0", "LIB-NAME libname|LIB-VER libver"),
    ("client|reply", "Instructs the server whether to reply to commands.", "3.2.0", "ON|OFF|SKIP"),
    ("client|no-evict", "Sets the client eviction mode of the connection.", "7.0.0", "ON|OFF"),
    ("client|no-touch", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", "7.2.0", "ON|OFF"),
    ("client|pause", "Suspends commands processing.", "3.0.0", "timeout [WRITE|ALL]"),
    ("client|unpause", "Resumes processing commands from paused clients.", "6.2.0", ""),
    ("client|tracking", "Controls server-assisted client-side caching for the connection (only OFF is supported).", "6.0.0", "ON|OFF"),
    ("client|getredir", "Returns the client ID to which the connection's tracking notifications are redirected.", "6.0.0", ""),
    ("client|help", "Returns helpful text about the different subcommands.", "5.0.0", ""),
    // server
    ("config", "A container for server configuration commands.", "2.0.0", ""),
    ("config|get", "Returns the effective values of configuration parameters.", "2.0.0", "parameter..."),
    ("config|set", "Sets configuration parameters in-flight.", "2.0.0", "(parameter value)..."),
    ("config|resetstat", "Resets the server's statistics.", "2.0.0", ""),
    ("config|rewrite", "Persists the effective configuration to file.", "2.8.0", ""),
    ("config|help", "Returns helpful text about the different subcommands.", "5.0.0", ""),
    ("command", "Returns detailed information about all commands.", "2.8.13", ""),
    ("command|count", "Returns a count of commands.", "2.8.13", ""),
    ("command|docs", "Returns documentary information about one, multiple or all commands.", "7.0.0", "[command-name...]"),
    ("command|info", "Returns information about one, multiple or all commands.", "2.8.13", "[command-name...]"),
    ("command|list", "Returns a list of command names.", "7.0.0", "[FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]"),
    ("command|getkeys", "Extracts the key names from an arbitrary command.", "2.8.13", "command [arg...]"),
    ("command|getkeysandflags", "Extracts the key names and access flags for an arbitrary command.", "7.0.0", "command [arg...]"),
    ("command|help", "Returns helpful text about the different subcommands.", "5.0.0", ""),
    ("info", "Returns information and statistics about the server.", "1.0.0", "[section...]"),
    ("time", "Returns the server time.", "2.6.0", ""),
    ("lastsave", "Returns the Unix timestamp of the last successful save to disk.", "1.0.0", ""),
    ("debug", "A container for debugging commands.", "1.0.0", ""),
    ("memory", "A container for memory diagnostics commands.", "4.0.0", ""),
    ("memory|usage", "Estimates the memory usage of a key.", "4.0.0", "key [SAMPLES count]"),
    ("memory|stats", "Returns details about memory usage.", "4.0.0", ""),
    ("memory|doctor", "Outputs a memory problems report.", "4.0.0", ""),
    ("memory|malloc-stats", "Returns the allocator statistics.", "4.0.0", ""),
    ("memory|purge", "Asks the allocator to release memory.", "4.0.0", ""),
    ("memory|help", "Returns helpful text about the different subcommands.", "4.0.0", ""),
    ("slowlog", "A container for slow log commands.", "2.2.12", ""),
    ("slowlog|get", "Returns the slow log's entries.", "2.2.12", "[count]"),
    ("slowlog|len", "Returns the number of entries in the slow log.", "2.2.12", ""),
    ("slowlog|reset", "Clears all entries from the slow log.", "2.2.12", ""),
    ("slowlog|help", "Show helpful text about the different subcommands", "6.2.0", ""),
    ("latency", "A container for latency diagnostics commands.", "2.8.13", ""),
    ("latency|latest", "Returns the latest latency samples for all events.", "2.8.13", ""),
    ("latency|history", "Returns timestamp-latency samples for an event.", "2.8.13", "event"),
    ("latency|reset", "Resets the latency data for one or more events.", "2.8.13", "[event...]"),
    ("latency|graph", "Returns a latency graph for an event.", "2.8.13", "event"),
    ("latency|histogram", "Returns the cumulative distribution of latencies of a subset or all commands.", "7.0.0", "[command...]"),
    ("latency|doctor", "Returns a human-readable latency analysis report.", "2.8.13", ""),
    ("latency|help", "Returns helpful text about the different subcommands.", "2.8.13", ""),
    ("shutdown", "Synchronously saves the database(s) to disk and shuts down the Redis server.", "1.0.0",
        "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]"),
];

/// The summary, since and argument docs of a command by full name ("get", "client|kill").
pub fn lookup(full_name: &str) -> Option<(&'static str, &'static str, Vec<Reply>)> {
    DOCS.iter()
        .find(|(n, ..)| *n == full_name)
        .map(|(_, summary, since, syntax)| (*summary, *since, parse_syntax(syntax)))
}

/// Parse a syntax string into Redis's argument-doc maps.
pub fn parse_syntax(syntax: &str) -> Vec<Reply> {
    split_top(syntax)
        .into_iter()
        .map(|item| item_doc(&item, false))
        .collect()
}

/// Split at spaces outside brackets and parentheses.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            _ => {}
        }
        if ch == ' ' && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(ch);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Split at `|` outside brackets.
fn split_alternatives(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            _ => {}
        }
        if ch == '|' && depth == 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    out.push(cur);
    out
}

fn is_token(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn arg_type(name: &str) -> &'static str {
    match name {
        "key" | "destination" | "source" | "newkey" | "destkey" | "sourcekey" | "dst" | "src" => {
            "key"
        }
        "pattern" => "pattern",
        "unix-time-seconds" | "unix-time-milliseconds" => "unix-time",
        "score" | "increment" | "weight" | "min" | "max" if name != "increment" => "double",
        _ if [
            "seconds",
            "milliseconds",
            "count",
            "offset",
            "start",
            "end",
            "stop",
            "index",
            "numkeys",
            "db",
            "timeout",
            "decrement",
            "ttl",
            "rank",
            "len",
            "limit",
            "cursor",
        ]
        .contains(&name) =>
        {
            "integer"
        }
        _ => "string",
    }
}

fn map(fields: Vec<(&str, Reply)>) -> Reply {
    Reply::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Reply::bulk(Bytes::copy_from_slice(k.as_bytes())), v))
            .collect(),
    )
}

fn flags_reply(optional: bool, multiple: bool) -> Option<Reply> {
    let mut f = Vec::new();
    if optional {
        f.push(Reply::Status(Bytes::from_static(b"optional")));
    }
    if multiple {
        f.push(Reply::Status(Bytes::from_static(b"multiple")));
    }
    (!f.is_empty()).then_some(Reply::Array(f))
}

/// One syntax item: `word`, `TOKEN`, `word...`, `[...]`, `(...)`, `a|b`, `TOKEN word`.
fn item_doc(item: &str, optional: bool) -> Reply {
    let (body, multiple) = match item.strip_suffix("...") {
        Some(b) => (b, true),
        None => (item, false),
    };
    if let Some(inner) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        return group_doc(inner, true, multiple);
    }
    if let Some(inner) = body.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
        return group_doc(inner, optional, multiple);
    }
    if split_alternatives(body).len() > 1 {
        return group_doc(body, optional, multiple);
    }
    word_doc(body, None, optional, multiple)
}

fn word_doc(word: &str, token: Option<&str>, optional: bool, multiple: bool) -> Reply {
    let mut fields = Vec::new();
    if is_token(word) {
        fields.push(("name", Reply::bulk(Bytes::from(word.to_ascii_lowercase()))));
        fields.push(("type", Reply::bulk_str("pure-token")));
        fields.push((
            "token",
            Reply::bulk(Bytes::copy_from_slice(word.as_bytes())),
        ));
    } else {
        fields.push(("name", Reply::bulk(Bytes::copy_from_slice(word.as_bytes()))));
        fields.push(("type", Reply::bulk_str(arg_type(word))));
        if let Some(t) = token {
            fields.push(("token", Reply::bulk(Bytes::copy_from_slice(t.as_bytes()))));
        }
    }
    if let Some(f) = flags_reply(optional, multiple) {
        fields.push(("flags", f));
    }
    map(fields)
}

/// A bracketed or parenthesised group: alternatives make a `oneof`, a `TOKEN word` pair is one
/// argument with a token, anything else is a `block`.
fn group_doc(inner: &str, optional: bool, multiple: bool) -> Reply {
    let alts = split_alternatives(inner);
    if alts.len() > 1 {
        let args: Vec<Reply> = alts.iter().map(|a| sequence_doc(a, false, false)).collect();
        let mut fields = vec![
            ("name", Reply::bulk(Bytes::from(group_name(inner)))),
            ("type", Reply::bulk_str("oneof")),
        ];
        if let Some(f) = flags_reply(optional, multiple) {
            fields.push(("flags", f));
        }
        fields.push(("arguments", Reply::Array(args)));
        return map(fields);
    }
    sequence_doc(inner, optional, multiple)
}

fn sequence_doc(seq: &str, optional: bool, multiple: bool) -> Reply {
    let parts = split_top(seq);
    match parts.as_slice() {
        [one] => {
            let mut d = item_doc(one, optional);
            if multiple {
                d = item_doc(&format!("{one}..."), optional);
            }
            d
        }
        [tok, word] if is_token(tok) && !word.starts_with('[') && !is_token(word) => {
            let (w, m) = match word.strip_suffix("...") {
                Some(w) => (w, true),
                None => (word.as_str(), false),
            };
            word_doc(w, Some(tok), optional, multiple || m)
        }
        _ => {
            let mut fields = vec![
                ("name", Reply::bulk(Bytes::from(group_name(seq)))),
                ("type", Reply::bulk_str("block")),
            ];
            if let Some(f) = flags_reply(optional, multiple) {
                fields.push(("flags", f));
            }
            fields.push((
                "arguments",
                Reply::Array(parts.iter().map(|p| item_doc(p, false)).collect()),
            ));
            map(fields)
        }
    }
}

/// A readable name for a group: its first plain word, or its first token in lowercase.
fn group_name(s: &str) -> String {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .find(|w| !w.is_empty())
        .unwrap_or("arg")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &Reply) -> String {
        format!("{r:?}")
    }

    #[test]
    fn every_syntax_parses_and_is_balanced() {
        for (name, _, _, syntax) in DOCS {
            let opens = syntax.matches(['[', '(']).count();
            let closes = syntax.matches([']', ')']).count();
            assert_eq!(opens, closes, "{name}");
            let _ = parse_syntax(syntax);
        }
    }

    #[test]
    fn set_syntax_shape() {
        let args = parse_syntax("key value [NX|XX] [GET] [EX seconds|PX milliseconds]");
        assert_eq!(args.len(), 5);
        let expiry = names(&args[4]);
        assert!(expiry.contains("oneof") && expiry.contains("EX") && expiry.contains("seconds"));
        assert!(names(&args[3]).contains("pure-token"));
        assert!(names(&args[0]).contains("\"key\""));
    }
}
