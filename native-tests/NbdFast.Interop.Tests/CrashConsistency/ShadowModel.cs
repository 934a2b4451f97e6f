using System.Text;

namespace NbdFast.Interop.Tests.CrashConsistency;

/// <summary>Which acknowledged writes a crash must not lose.</summary>
public enum Durability
{
    /// <summary>
    /// The NBD promise that survives power loss (DS-1, DS-2, DS-8): writes acknowledged with FUA, and writes
    /// acknowledged before an acknowledged FLUSH was issued.
    /// </summary>
    FuaOrFlushed,

    /// <summary>
    /// The stronger promise for a process crash (DS-7): every acknowledged write, since the page cache (or the
    /// device, under O_DIRECT) outlives the process and the server keeps no user-space write-back.
    /// </summary>
    Acknowledged,
}

/// <summary>What a check found: the bytes no allowed write explains, and the durable writes they belonged to.</summary>
public sealed record CheckResult(Durability Rule, long BadBytes, IReadOnlyList<int> LostWriteIds, string Details)
{
    public bool Clean => BadBytes == 0;
}

/// <summary>
/// The shadow model of the backing file across server lifetimes. For a byte b, the value written by X
/// (or the content before this server lifetime) is allowed unless X is obsolete: some durable write D
/// covering b was issued after X was acknowledged. Overlapping writes in flight together are thus unordered,
/// a write never acknowledged may or may not have landed (any subset of its bytes), and anything matching
/// no write is garbage. Bytes are told apart by the per-write pattern (<see cref="LoggedWrite.PatternByte"/>).
/// </summary>
public sealed class ShadowModel
{
    /// <summary>No durable write covers the byte (log sequences are all non-negative).</summary>
    private const int NoDurableWrite = int.MinValue;

    /// <summary>Acknowledged before every event of the current lifetime.</summary>
    private const int EarlierLifetime = -1;

    private readonly byte[] _baseline;
    private readonly int[] _newestDurableIssue;
    private readonly bool[] _explained;
    private IReadOnlyList<LoggedWrite> _carried = [];

    /// <param name="initialContent">The file's content before the first server starts.</param>
    public ShadowModel(byte[] initialContent)
    {
        _baseline = (byte[])initialContent.Clone();
        _newestDurableIssue = new int[initialContent.Length];
        _explained = new bool[initialContent.Length];
    }

    public int Size => _baseline.Length;

    /// <summary>Checks the file after a server lifetime whose client saw <paramref name="log"/>.</summary>
    public CheckResult Check(WriteLog log, ReadOnlySpan<byte> file, Durability rule)
    {
        if (file.Length != Size)
        {
            return new CheckResult(rule, Size, [], $"the file is {file.Length} bytes, not {Size}");
        }
        int flushedBefore = log.LastAcknowledgedFlushIssue;
        bool IsDurable(LoggedWrite w) => w.Acknowledged &&
            (rule == Durability.Acknowledged || w.Fua || w.AckSequence < flushedBefore);

        Array.Fill(_newestDurableIssue, NoDurableWrite);
        foreach (LoggedWrite w in log.Writes.Where(IsDurable))
        {
            Span<int> range = _newestDurableIssue.AsSpan((int)w.Offset, w.Length);
            for (int i = 0; i < range.Length; i++)
            {
                range[i] = Math.Max(range[i], w.IssueSequence);
            }
        }

        // Earlier content (the file as last checked, or a previous lifetime's unacknowledged write landing
        // late) counts as acknowledged before everything in this lifetime.
        for (int b = 0; b < Size; b++)
        {
            _explained[b] = _newestDurableIssue[b] == NoDurableWrite && file[b] == _baseline[b];
        }
        foreach (LoggedWrite w in _carried)
        {
            Explain(w, file, EarlierLifetime);
        }
        foreach (LoggedWrite w in log.Writes)
        {
            Explain(w, file, w.AckSequence);
        }
        return Summarise(log, file, rule);
    }

    /// <summary>After a clean check: this file is the next lifetime's starting point.</summary>
    public void Advance(WriteLog log, ReadOnlySpan<byte> file)
    {
        file.CopyTo(_baseline);
        _carried = [.. log.Writes.Where(w => !w.Acknowledged)];
    }

    private void Explain(LoggedWrite w, ReadOnlySpan<byte> file, int ackSequence)
    {
        for (long b = w.Offset; b < w.End; b++)
        {
            if (!_explained[b] && ackSequence > _newestDurableIssue[b] && file[(int)b] == w.ByteAt(b))
            {
                _explained[b] = true;
            }
        }
    }

    private CheckResult Summarise(WriteLog log, ReadOnlySpan<byte> file, Durability rule)
    {
        long bad = 0;
        var lost = new SortedSet<int>();
        var details = new StringBuilder();
        var byIssue = log.Writes.ToDictionary(w => w.IssueSequence);
        int reported = 0;
        for (int b = 0; b < Size; b++)
        {
            if (_explained[b])
            {
                continue;
            }
            bad++;
            int newest = _newestDurableIssue[b];
            LoggedWrite? expected = newest == NoDurableWrite ? null : byIssue[newest];
            if (expected is not null)
            {
                lost.Add(expected.Id);
            }
            bool startsRun = b == 0 || _explained[b - 1];
            if (startsRun && reported++ < 10)
            {
                details.Append(expected is null
                    ? $"byte {b}: 0x{file[b]:x2} matches neither the earlier content (0x{_baseline[b]:x2}) nor any write covering it\n"
                    : $"byte {b}: 0x{file[b]:x2}, but durable write {expected.Id} ([{expected.Offset}, {expected.End}), fua {expected.Fua}, " +
                      $"issued at event {expected.IssueSequence}, acked at {expected.AckSequence}) put 0x{expected.ByteAt(b):x2} there " +
                      "and no write in flight or issued after it explains the byte\n");
            }
        }
        return new CheckResult(rule, bad, [.. lost], details.ToString());
    }
}
