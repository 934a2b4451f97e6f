using CsCheck;
using NbdFast.Fuzzing;
using NbdFast.Protocol;

namespace NbdFast.Tests.Fuzzing;

/// <summary>
/// The negotiation state machine (<see cref="NbdServer.ConnectAsync"/> over an in-memory duplex stream) driven
/// with random and mutated option sequences: no exception escapes but the documented ones, every reply is a
/// well-formed option reply echoing the client's option with a type allowed for it, and every session ends in
/// a chosen export, an ACK to ABORT, or a clean close (see <see cref="HandshakeChecker"/>).
/// </summary>
public sealed class NegotiationProperties
{
    private static readonly IReadOnlyList<(string Name, byte[] Input)> SeedSessions = Seeds.Handshakes();

    [Fact]
    public void RandomAndMutatedOptionSequencesKeepEveryReplyProperty()
    {
        var ends = new int[3];
        OptionScripts.Scripts.Sample((config, script) =>
        {
            HandshakeOutcome outcome = HandshakeSession.Run(config, script);
            HandshakeChecker.Check(config, script, outcome);
            Interlocked.Increment(ref ends[(int)outcome.End]);
        }, iter: 1500);
        // The generator reaches all three endings; otherwise the properties above were checked on too little.
        Assert.All(ends, count => Assert.True(count > 0, $"endings reached: {string.Join(", ", ends)}"));
    }

    [Fact]
    public void MutatedSeedSessionsKeepEveryReplyProperty() =>
        Gen.Select(Gen.Int[0, SeedSessions.Count - 1], Gen.Select(Gen.Int[0, 3], Gen.Int[0, 400], Gen.Byte).Array[1, 6])
            .Sample((index, mutations) =>
            {
                byte[] input = (byte[])SeedSessions[index].Input.Clone();
                foreach ((int kind, int at, byte value) in mutations)
                {
                    int position = at % input.Length;
                    input = kind switch
                    {
                        0 => Set(input, position, value),
                        1 => Set(input, position, (byte)(input[position] ^ (1 << (value % 8)))),
                        2 => input[..position],
                        _ => [.. input[..position], value, .. input[position..]],
                    };
                    if (input.Length == 0)
                    {
                        return;
                    }
                }
                HandshakeConfig config = HandshakeConfig.FromByte(input[0]);
                byte[] client = input[1..];
                HandshakeChecker.Check(config, client, HandshakeSession.Run(config, client));
            }, iter: 1000);

    private static byte[] Set(byte[] input, int position, byte value)
    {
        input[position] = value;
        return input;
    }

    [Fact]
    public void EverySeedSessionEndsAsItsNameSays()
    {
        foreach ((string name, byte[] input) in SeedSessions)
        {
            HandshakeConfig config = HandshakeConfig.FromByte(input[0]);
            HandshakeOutcome outcome = HandshakeSession.Run(config, input.AsMemory(1));
            HandshakeChecker.Check(config, input.AsSpan(1), outcome);
            HandshakeEnd expected = name switch
            {
                "list-then-abort" => HandshakeEnd.Aborted,
                "forced-tls-refusals" => HandshakeEnd.Closed, // STARTTLS acknowledged, then no TLS ClientHello
                _ => HandshakeEnd.ExportChosen,
            };
            Assert.True(expected == outcome.End, $"{name}: {outcome.End}");
        }
    }

    [Fact]
    public void AbortThenDataEndsWithTheAckOnly() =>
        Gen.Select(Gen.Byte.Array[0, 64], Gen.Bool).Sample((junk, plain) =>
        {
            var config = new HandshakeConfig(plain ? FuzzTls.None : FuzzTls.Required, true, true, false);
            byte[] script = [.. Seeds.Handshake(config, NbdClientFlags.FixedNewstyle, (NbdOption.Abort, []))[1..], .. junk];
            HandshakeOutcome outcome = HandshakeSession.Run(config, script);
            HandshakeChecker.Check(config, script, outcome);
            Assert.Equal(HandshakeEnd.Aborted, outcome.End);
            Assert.Equal(NbdLimits.GreetingSize + NbdLimits.OptionReplyHeaderSize, outcome.ServerOutput.Length);
        }, iter: 200);

    [Fact]
    public void StartTlsWithoutTlsIsRefusedAndTheSessionGoesOn() =>
        Gen.Byte.Array[0, 3].Sample(data =>
        {
            var config = new HandshakeConfig(FuzzTls.None, true, true, false);
            byte[] script = Seeds.Handshake(config, NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes,
                (NbdOption.StartTls, data), (NbdOption.Go, TransmissionSession.InfoData("a")))[1..];
            HandshakeOutcome outcome = HandshakeSession.Run(config, script);
            HandshakeChecker.Check(config, script, outcome);
            Assert.Equal(HandshakeEnd.ExportChosen, outcome.End);
            OptionReplyHeader refusal = HandshakeCodec.ReadOptionReplyHeader(outcome.ServerOutput.AsSpan(NbdLimits.GreetingSize));
            Assert.Equal(data.Length == 0 ? NbdOptionReplyType.ErrPolicy : NbdOptionReplyType.ErrInvalid, refusal.Type);
        }, iter: 50);

    [Fact]
    public async Task AStalledClientEndsAtTheDeadlineWithTheDocumentedException()
    {
        // Prefixes of a valid session, after which the client goes silent (the stream never delivers more).
        byte[] session = SeedSessions[0].Input[1..];
        await Gen.Int[0, session.Length - 1].SampleAsync(async cut =>
        {
            var stream = new StallingStream(session.AsMemory(0, cut));
            var options = new NegotiationOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(50) };
            var error = await Assert.ThrowsAsync<NbdProtocolException>(() =>
                NbdServer.ConnectAsync(new NbdChannel(stream), HandshakeSession.Offer, null, options));
            Assert.IsAssignableFrom<OperationCanceledException>(error.InnerException);
            Assert.True(stream.Disposed);
        }, iter: 20);
    }

    /// <summary>A scripted client that stops sending (without closing) once its script is spent.</summary>
    private sealed class StallingStream(ReadOnlyMemory<byte> script) : Stream
    {
        private readonly ScriptedStream _inner = new(script);
        private int _remaining = script.Length;

        public bool Disposed { get; private set; }
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_remaining == 0)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            int read = await _inner.ReadAsync(buffer, cancellationToken);
            _remaining -= read;
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _inner.WriteAsync(buffer, cancellationToken);
        public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
