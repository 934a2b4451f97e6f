using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace NbdFast.Interop.Tests.Support;

/// <summary>
/// A well-behaved python3-libnbd client that stays connected while bad input hits the same server. Each
/// <see cref="CheckAsync"/> is one round: it checks that the previous round's data is still intact, writes new
/// random data to its own region, reads it back on its long-lived connection and on a fresh one. A round that
/// fails or does not answer fails the test.
/// </summary>
public sealed class CompanionClient : IDisposable
{
    public static readonly TimeSpan RoundTimeout = TimeSpan.FromSeconds(30);

    private const string Script = """
        import nbd, random, sys
        uri, base, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        h = nbd.NBD()
        h.connect_uri(uri)
        print("ready", flush=True)
        previous = None
        for line in sys.stdin:
            n = int(line)
            try:
                if previous is not None and h.pread(size, base) != previous:
                    print(f"FAIL {n} the previous round's data changed", flush=True)
                    continue
                data = random.Random(n).randbytes(size)
                h.pwrite(data, base)
                if h.pread(size, base) != data:
                    print(f"FAIL {n} read-back differs on the long-lived connection", flush=True)
                    continue
                fresh = nbd.NBD()
                fresh.connect_uri(uri)
                same = fresh.pread(size, base) == data
                fresh.shutdown()
                if not same:
                    print(f"FAIL {n} read-back differs on a fresh connection", flush=True)
                    continue
                previous = data
                print(f"ok {n}", flush=True)
            except nbd.Error as e:
                print(f"FAIL {n} {e}", flush=True)
        h.shutdown()
        """;

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly Lock _lock = new();
    private readonly Queue<string> _lines = new();
    private readonly SemaphoreSlim _lineArrived = new(0);
    private int _round;

    private CompanionClient(string uri, long regionOffset, int regionSize)
    {
        _process = new Process
        {
            StartInfo = ToolEnvironment.StartInfo(ToolEnvironment.Python,
                ["-c", Script, uri, regionOffset.ToString(CultureInfo.InvariantCulture), regionSize.ToString(CultureInfo.InvariantCulture)]),
        };
        _process.OutputDataReceived += (_, e) =>
        {
            lock (_lock)
            {
                _lines.Enqueue(e.Data ?? "(the client exited)");
            }
            _lineArrived.Release();
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            lock (_lock)
            {
                _stderr.AppendLine(e.Data);
            }
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Rounds that passed.</summary>
    public int Rounds { get; private set; }

    /// <summary>Starts the client on <paramref name="uri"/> and waits until it is connected.</summary>
    public static async Task<CompanionClient> ConnectAsync(string uri, long regionOffset, int regionSize)
    {
        var client = new CompanionClient(uri, regionOffset, regionSize);
        try
        {
            string line = await client.NextLineAsync("connecting").ConfigureAwait(false);
            if (line != "ready")
            {
                throw new InvalidOperationException($"companion client did not connect: {line}\n{client.Stderr}");
            }
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public string Stderr { get { lock (_lock) { return _stderr.ToString(); } } }

    /// <summary>Runs one round; throws with the client's own words when it fails.</summary>
    public async Task CheckAsync(string context)
    {
        int round = ++_round;
        await _process.StandardInput.WriteLineAsync(round.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
        string line = await NextLineAsync(context).ConfigureAwait(false);
        if (line != $"ok {round}")
        {
            throw new InvalidOperationException($"well-behaved client, round {round} ({context}): {line}\n{Stderr}");
        }
        Rounds++;
    }

    private async Task<string> NextLineAsync(string context)
    {
        if (!await _lineArrived.WaitAsync(RoundTimeout).ConfigureAwait(false))
        {
            throw new TimeoutException($"well-behaved client ({context}): no answer within {RoundTimeout.TotalSeconds} s\n{Stderr}");
        }
        lock (_lock)
        {
            return _lines.Dequeue();
        }
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(5000))
            {
                _process.Kill();
            }
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
        }
        _process.Dispose();
        // _lineArrived is not disposed: the output reader's last callback (end of stream) can still run after
        // the process is disposed and would Release a disposed semaphore, crashing the test host. It holds no
        // kernel handle (AvailableWaitHandle is never used), so the GC reclaims it.
    }
}
