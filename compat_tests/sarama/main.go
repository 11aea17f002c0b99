// Command saramacheck drives one broker with Sarama and prints one line per
// check: "PASS <name>" or "FAIL <name>: <reason>". It exits non-zero when any
// check fails. The pytest side (compat_tests/test_sarama.py) builds it in
// GOPATH mode against Debian's Sarama and reads those lines.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

var (
	brokers = flag.String("brokers", "127.0.0.1:9092", "bootstrap host:port")
	version = flag.String("version", "2.1.0", "the Kafka version Sarama speaks (its Config.Version)")
	prefix  = flag.String("prefix", "sarama", "prefix for the topic and group names this run makes")
	failed  = false
	// Records carry explicit timestamps a minute in the past, one millisecond apart.
	firstTimestampMs = time.Now().Add(-time.Minute).UnixNano() / int64(time.Millisecond)
)

func report(name string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
	} else {
		fmt.Printf("PASS %s\n", name)
	}
}

func newConfig() *sarama.Config {
	kafkaVersion, err := sarama.ParseKafkaVersion(*version)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	config := sarama.NewConfig()
	config.Version = kafkaVersion
	config.ClientID = "sarama-compat"
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Consumer.Return.Errors = true
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	config.Metadata.Retry.Backoff = 100 * time.Millisecond
	return config
}

func name(what string) string { return *prefix + "-" + what }

func createTopic(admin sarama.ClusterAdmin, topic string, partitions int32, configs map[string]*string) error {
	return admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false)
}

// checkAdmin: create, list (Metadata v0 + DescribeConfigs v0), describe-config, delete.
func checkAdmin(admin sarama.ClusterAdmin) error {
	topic := name("admin")
	retention := "3600000"
	if err := createTopic(admin, topic, 3, map[string]*string{"retention.ms": &retention}); err != nil {
		return fmt.Errorf("create: %v", err)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list: %v", err)
	}
	detail, ok := topics[topic]
	if !ok {
		return fmt.Errorf("list: %s missing", topic)
	}
	if detail.NumPartitions != 3 || detail.ReplicationFactor != 1 {
		return fmt.Errorf("list: %d partitions, replication %d", detail.NumPartitions, detail.ReplicationFactor)
	}
	// ListTopics keeps only the non-default entries, so this also checks is_default.
	if len(detail.ConfigEntries) != 1 || detail.ConfigEntries["retention.ms"] == nil ||
		*detail.ConfigEntries["retention.ms"] != retention {
		return fmt.Errorf("list: non-default configs %v", keys(detail.ConfigEntries))
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return fmt.Errorf("describe-config: %v", err)
	}
	byName := map[string]sarama.ConfigEntry{}
	for _, entry := range entries {
		byName[entry.Name] = entry
	}
	if e := byName["retention.ms"]; e.Value != retention || e.Default {
		return fmt.Errorf("describe-config: retention.ms %+v", e)
	}
	if e := byName["cleanup.policy"]; e.Value != "delete" || !e.Default {
		return fmt.Errorf("describe-config: cleanup.policy %+v", e)
	}
	if err := admin.DeleteTopic(topic); err != nil {
		return fmt.Errorf("delete: %v", err)
	}
	topics, err = admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list after delete: %v", err)
	}
	if _, ok := topics[topic]; ok {
		return fmt.Errorf("list after delete: %s still listed", topic)
	}
	return nil
}

func keys(m map[string]*string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type sent struct {
	key, value  string
	partition   int32
	offset      int64
	timestampMs int64
}

// checkSyncProducer: acks=all, keys, headers and timestamps; a key always lands on one
// partition; a partition consumer reads all of them back the same at the same offsets.
// It returns what it sent.
func checkSyncProducer(client sarama.Client, topic string) ([]sent, error) {
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	var all []sent
	home := map[string]int32{}
	for n := 0; n < 30; n++ {
		key, value := fmt.Sprintf("key-%d", n%10), fmt.Sprintf("value-%d", n)
		timestamp := firstTimestampMs + int64(n)
		partition, offset, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value),
			Headers:   []sarama.RecordHeader{{Key: []byte("n"), Value: []byte(fmt.Sprint(n))}},
			Timestamp: time.Unix(0, timestamp*int64(time.Millisecond)),
		})
		if err != nil {
			return nil, fmt.Errorf("send %d: %v", n, err)
		}
		if first, seen := home[key]; seen && first != partition {
			return nil, fmt.Errorf("%s went to partitions %d and %d", key, first, partition)
		}
		home[key] = partition
		all = append(all, sent{key, value, partition, offset, timestamp})
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	for partition := int32(0); partition < 3; partition++ {
		var want []sent
		for _, s := range all {
			if s.partition == partition {
				want = append(want, s)
			}
		}
		got, headers, err := readPartition(consumer, topic, partition, len(want))
		if err != nil {
			return nil, err
		}
		if !reflect.DeepEqual(got, want) {
			return nil, fmt.Errorf("partition %d: read %v, sent %v", partition, got, want)
		}
		for i, s := range want {
			if headers[i] != "n="+strings.TrimPrefix(s.value, "value-") {
				return nil, fmt.Errorf("partition %d offset %d: headers %q", partition, s.offset, headers[i])
			}
		}
	}
	return all, nil
}

// readPartition reads `count` messages from the start of one partition.
func readPartition(consumer sarama.Consumer, topic string, partition int32, count int) ([]sent, []string, error) {
	pc, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, nil, fmt.Errorf("consume %d: %v", partition, err)
	}
	defer pc.Close()
	var got []sent
	var headers []string
	timeout := time.After(20 * time.Second)
	for len(got) < count {
		select {
		case m := <-pc.Messages():
			got = append(got, sent{string(m.Key), string(m.Value), m.Partition, m.Offset,
				m.Timestamp.UnixNano() / int64(time.Millisecond)})
			var h []string
			for _, header := range m.Headers {
				h = append(h, string(header.Key)+"="+string(header.Value))
			}
			headers = append(headers, strings.Join(h, ","))
		case err := <-pc.Errors():
			return nil, nil, fmt.Errorf("partition %d: %v", partition, err)
		case <-timeout:
			return nil, nil, fmt.Errorf("partition %d: %d of %d messages after 20 s", partition, len(got), count)
		}
	}
	return got, headers, nil
}

// checkOffsets: GetOffset oldest is 0, newest the count the sync producer sent to each
// partition, and a record's timestamp finds that record's offset.
func checkOffsets(client sarama.Client, topic string, records []sent) error {
	counts := map[int32]int64{}
	for _, r := range records {
		counts[r.partition]++
		found, err := client.GetOffset(topic, r.partition, r.timestampMs)
		if err != nil {
			return err
		}
		if found != r.offset {
			return fmt.Errorf("timestamp %d: offset %d, want %d", r.timestampMs, found, r.offset)
		}
	}
	for partition := int32(0); partition < 3; partition++ {
		newest, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
		if err != nil {
			return err
		}
		if oldest != 0 || newest != counts[partition] {
			return fmt.Errorf("partition %d: oldest %d newest %d, sent %d", partition, oldest, newest, counts[partition])
		}
	}
	return nil
}

// groupReader consumes a group's topic until it has `want` messages, marking each one.
type groupReader struct {
	want   int
	got    []string
	done   chan struct{}
	mu     sync.Mutex
	closed bool
}

func (r *groupReader) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (r *groupReader) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (r *groupReader) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		session.MarkMessage(m, "") // before counting, so every mark precedes `done`
		r.mu.Lock()
		r.got = append(r.got, string(m.Value))
		if len(r.got) >= r.want && !r.closed {
			r.closed = true
			close(r.done)
		}
		r.mu.Unlock()
	}
	return nil
}

// readGroup joins `group`, reads `want` messages of `topic` and leaves (committing on close).
func readGroup(group, topic string, want int) ([]string, error) {
	consumer, err := sarama.NewConsumerGroup(strings.Split(*brokers, ","), group, newConfig())
	if err != nil {
		return nil, err
	}
	reader := &groupReader{want: want, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := consumer.Consume(ctx, []string{topic}, reader); err != nil {
				finished <- err
				return
			}
		}
		finished <- nil
	}()
	select {
	case <-reader.done:
	case err := <-finished:
		cancel()
		consumer.Close()
		return nil, fmt.Errorf("consume: %v", err)
	case <-time.After(30 * time.Second):
	}
	time.Sleep(300 * time.Millisecond) // past one CommitInterval, then Close commits the rest
	cancel()
	<-finished
	if err := consumer.Close(); err != nil {
		return nil, fmt.Errorf("close: %v", err)
	}
	reader.mu.Lock()
	defer reader.mu.Unlock()
	if len(reader.got) != want {
		return nil, fmt.Errorf("read %d of %d messages", len(reader.got), want)
	}
	sort.Strings(reader.got)
	return reader.got, nil
}

func produceValues(client sarama.Client, topic string, values []string) error {
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return err
	}
	defer producer.Close()
	for _, v := range values {
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
			return err
		}
	}
	return nil
}

func values(from, to int) []string {
	var out []string
	for n := from; n < to; n++ {
		out = append(out, fmt.Sprintf("m%02d", n))
	}
	return out
}

// checkGroupResume: a group reads and commits; the next member of the group
// resumes at the committed offsets and sees only what came after.
func checkGroupResume(admin sarama.ClusterAdmin, client sarama.Client) error {
	topic, group := name("group"), name("resume")
	if err := createTopic(admin, topic, 3, nil); err != nil {
		return err
	}
	if err := produceValues(client, topic, values(0, 9)); err != nil {
		return err
	}
	got, err := readGroup(group, topic, 9)
	if err != nil {
		return fmt.Errorf("first read: %v", err)
	}
	if !reflect.DeepEqual(got, values(0, 9)) {
		return fmt.Errorf("first read: %v", got)
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		return fmt.Errorf("committed offsets: %v", err)
	}
	var committed int64
	for partition := int32(0); partition < 3; partition++ {
		block := offsets.GetBlock(topic, partition)
		if block == nil || block.Err != sarama.ErrNoError {
			return fmt.Errorf("committed offset of partition %d: %+v", partition, block)
		}
		if block.Offset > 0 { // -1: nothing committed, as for a partition the random partitioner left empty
			committed += block.Offset
		}
	}
	if committed != 9 {
		return fmt.Errorf("committed offsets add up to %d, want 9", committed)
	}
	if err := produceValues(client, topic, values(9, 13)); err != nil {
		return err
	}
	got, err = readGroup(group, topic, 4)
	if err != nil {
		return fmt.Errorf("resumed read: %v", err)
	}
	if !reflect.DeepEqual(got, values(9, 13)) {
		return fmt.Errorf("resumed read: %v", got)
	}
	return nil
}

// claimRecorder remembers the claims each session of one member was given.
type claimRecorder struct {
	mu     *sync.Mutex
	claims map[int32]map[string][]int32 // generation -> member id -> partitions
}

func (r claimRecorder) Setup(session sarama.ConsumerGroupSession) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claims[session.GenerationID()] == nil {
		r.claims[session.GenerationID()] = map[string][]int32{}
	}
	r.claims[session.GenerationID()][session.MemberID()] = session.Claims()[*prefix+"-pair"]
	return nil
}
func (r claimRecorder) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (r claimRecorder) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		session.MarkMessage(m, "")
	}
	return nil
}

// checkTwoMembers: two members of one group share three partitions, each held by exactly one.
func checkTwoMembers(admin sarama.ClusterAdmin) error {
	topic, group := name("pair"), name("pair")
	if err := createTopic(admin, topic, 3, nil); err != nil {
		return err
	}
	recorder := claimRecorder{mu: &sync.Mutex{}, claims: map[int32]map[string][]int32{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var members []sarama.ConsumerGroup
	var wg sync.WaitGroup
	for n := 0; n < 2; n++ {
		member, err := sarama.NewConsumerGroup(strings.Split(*brokers, ","), group, newConfig())
		if err != nil {
			return err
		}
		members = append(members, member)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := member.Consume(ctx, []string{topic}, recorder); err != nil {
					return
				}
			}
		}()
		time.Sleep(500 * time.Millisecond) // the second member joins a group that already has one
	}
	defer func() {
		cancel()
		for _, member := range members {
			member.Close()
		}
		wg.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		recorder.mu.Lock()
		for generation, byMember := range recorder.claims {
			if len(byMember) != 2 {
				continue
			}
			var all []int
			for _, partitions := range byMember {
				for _, p := range partitions {
					all = append(all, int(p))
				}
			}
			sort.Ints(all)
			recorder.mu.Unlock()
			if !reflect.DeepEqual(all, []int{0, 1, 2}) {
				return fmt.Errorf("generation %d assignments %v", generation, byMember)
			}
			return nil
		}
		recorder.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no generation with both members after 30 s: %v", recorder.claims)
}

// checkAsyncProducer: an async producer configured by `tune` writes to topic <prefix>-<label>;
// a partition consumer reads back the same messages.
func checkAsyncProducer(admin sarama.ClusterAdmin, label string, tune func(*sarama.Config)) error {
	topic := name(label)
	if err := createTopic(admin, topic, 1, nil); err != nil {
		return err
	}
	config := newConfig()
	tune(config)
	config.Producer.Flush.Messages = 10 // several records per batch
	config.Producer.Flush.Frequency = 50 * time.Millisecond
	client, err := sarama.NewClient(strings.Split(*brokers, ","), config)
	if err != nil {
		return err
	}
	defer client.Close()
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return err
	}
	var want []sent
	for n := 0; n < 25; n++ {
		key := fmt.Sprintf("k%d", n)
		value := strings.Repeat(fmt.Sprintf("%s-%d ", label, n), 20)
		timestamp := firstTimestampMs + int64(n)
		producer.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key),
			Value: sarama.StringEncoder(value), Timestamp: time.Unix(0, timestamp*int64(time.Millisecond))}
		want = append(want, sent{key, value, 0, int64(n), timestamp})
	}
	for n := 0; n < len(want); n++ {
		select {
		case <-producer.Successes():
		case err := <-producer.Errors():
			producer.Close()
			return fmt.Errorf("produce: %v", err)
		case <-time.After(20 * time.Second):
			producer.Close()
			return fmt.Errorf("%d of %d acknowledged after 20 s", n, len(want))
		}
	}
	if err := producer.Close(); err != nil {
		return err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	got, _, err := readPartition(consumer, topic, 0, len(want))
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("read back %v", got)
	}
	return nil
}

func main() {
	flag.Parse()
	config := newConfig()
	addrs := strings.Split(*brokers, ",")
	admin, err := sarama.NewClusterAdmin(addrs, config)
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer admin.Close()
	client, err := sarama.NewClient(addrs, config)
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer client.Close()

	report("admin", checkAdmin(admin))
	syncTopic := name("sync")
	var records []sent
	err = createTopic(admin, syncTopic, 3, nil)
	if err == nil {
		records, err = checkSyncProducer(client, syncTopic)
	}
	report("sync-producer", err)
	if err == nil {
		err = checkOffsets(client, syncTopic, records)
	}
	report("get-offset", err)
	report("group-resume", checkGroupResume(admin, client))
	report("two-members", checkTwoMembers(admin))
	codecs := map[string]sarama.CompressionCodec{
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "gzip": sarama.CompressionGZIP}
	for _, label := range []string{"snappy", "lz4", "gzip"} {
		codec := codecs[label]
		report(label, checkAsyncProducer(admin, label, func(c *sarama.Config) { c.Producer.Compression = codec }))
	}
	report("idempotent", checkAsyncProducer(admin, "idempotent", func(c *sarama.Config) {
		c.Producer.Idempotent = true // InitProducerId, then sequence numbers per batch
		c.Net.MaxOpenRequests = 1
	}))
	if failed {
		os.Exit(1)
	}
}
