namespace NbdFast.Interop.Tests.CrashConsistency;

/// <summary>
/// The checker itself, on hand-made logs and files: it must catch every kind of loss the kill -9 test is
/// there to find (otherwise that test could not fail), and accept every outcome the contract allows.
/// </summary>
public sealed class ShadowModelTests
{
    private const int Size = 4096;

    // Issue order: 1 plain write, 2 FUA write, 3 plain write acked before flush 4, 5 plain write after the flush.
    // Keys are random 64-bit values, as the writer's are, so that every byte of two writes differs.
    private const string Log = """
        CONNECTED
        W 1 0 100 0 4712128852136459333
        W 2 200 100 1 6613812840851947673
        A 1
        A 2
        W 3 400 100 0 12736496262939004471
        A 3
        F 4
        W 5 600 100 0 15523137368101252074
        FA 4
        A 5
        W 6 800 100 0 12027861843233603113
        END nbd error: connection reset
        """;

    [Fact]
    public void EveryWriteLanded_IsClean()
    {
        (ShadowModel model, byte[] file) = Start();
        WriteLog log = WriteLog.Parse(Log);
        foreach (LoggedWrite w in log.Writes)
        {
            Apply(file, w);
        }

        AssertClean(model, log, file);
    }

    [Fact]
    public void UnacknowledgedWrite_MayBeMissingOrTorn()
    {
        (ShadowModel model, byte[] file) = Start();
        WriteLog log = WriteLog.Parse(Log);
        foreach (LoggedWrite w in log.Writes.Where(w => w.Id != 6))
        {
            Apply(file, w);
        }
        AssertClean(model, log, file);

        Apply(file, log.Writes.Single(w => w.Id == 6), from: 850);   // half of it landed
        AssertClean(model, log, file);
    }

    [Theory]
    [InlineData(2)]   // FUA
    [InlineData(3)]   // acknowledged before an acknowledged FLUSH was issued
    public void LostDurableWrite_FailsBothRules(int id)
    {
        (ShadowModel model, byte[] file) = Start();
        WriteLog log = WriteLog.Parse(Log);
        foreach (LoggedWrite w in log.Writes.Where(w => w.Id != id))
        {
            Apply(file, w);
        }

        foreach (Durability rule in Enum.GetValues<Durability>())
        {
            CheckResult result = model.Check(log, file, rule);
            Assert.False(result.Clean);
            Assert.Equal(Differing(file, log.Writes.Single(w => w.Id == id)), result.BadBytes);
            Assert.Equal([id], result.LostWriteIds);
        }
    }

    [Theory]
    [InlineData(1)]   // acknowledged before a FLUSH that was never acknowledged
    [InlineData(5)]   // acknowledged after the flush was issued
    public void LostPlainWrite_FailsOnlyTheProcessCrashRule(int id)
    {
        (ShadowModel model, byte[] file) = Start();
        // Write 1 was acknowledged before flush 4 was issued, so make it unflushed by dropping the flush ack.
        WriteLog log = WriteLog.Parse(Log.Replace("FA 4\n", "", StringComparison.Ordinal));
        foreach (LoggedWrite w in log.Writes.Where(w => w.Id != id))
        {
            Apply(file, w);
        }

        Assert.True(model.Check(log, file, Durability.FuaOrFlushed).Clean);
        CheckResult strict = model.Check(log, file, Durability.Acknowledged);
        Assert.Equal(Differing(file, log.Writes.Single(w => w.Id == id)), strict.BadBytes);
        Assert.Equal([id], strict.LostWriteIds);
    }

    [Fact]
    public void OneGarbageByte_IsCaught()
    {
        (ShadowModel model, byte[] file) = Start();
        WriteLog log = WriteLog.Parse(Log);
        foreach (LoggedWrite w in log.Writes)
        {
            Apply(file, w);
        }
        file[3000] ^= 0x5a;   // a byte no write touched

        CheckResult result = model.Check(log, file, Durability.FuaOrFlushed);
        Assert.Equal(1, result.BadBytes);
        Assert.Contains("byte 3000", result.Details, StringComparison.Ordinal);
    }

    [Fact]
    public void OverlappingWritesInFlightTogether_EitherOrderIsAllowed_ButAnOverwrittenOneIsNot()
    {
        const string overlap = """
            CONNECTED
            W 1 0 64 1 4712128852136459333
            W 2 32 64 1 6613812840851947673
            A 2
            A 1
            W 3 0 16 1 12736496262939004471
            A 3
            END done
            """;
        WriteLog log = WriteLog.Parse(overlap);
        LoggedWrite w1 = log.Writes[0], w2 = log.Writes[1], w3 = log.Writes[2];
        foreach (LoggedWrite[] order in new[] { new[] { w1, w2, w3 }, new[] { w2, w1, w3 } })
        {
            (ShadowModel model, byte[] file) = Start();
            foreach (LoggedWrite w in order)
            {
                Apply(file, w);
            }
            AssertClean(model, log, file);
        }

        // Write 1 landing after write 3 (issued after write 1 was acknowledged) is a lost update.
        (ShadowModel late, byte[] wrong) = Start();
        foreach (LoggedWrite w in new[] { w2, w3, w1 })
        {
            Apply(wrong, w);
        }
        CheckResult result = late.Check(log, wrong, Durability.FuaOrFlushed);
        Assert.Equal(16, result.BadBytes);
        Assert.Equal([3], result.LostWriteIds);
    }

    [Fact]
    public void NextLifetime_StartsFromTheCheckedFile_AndAllowsALateUnacknowledgedWrite()
    {
        (ShadowModel model, byte[] file) = Start();
        WriteLog first = WriteLog.Parse(Log);
        foreach (LoggedWrite w in first.Writes.Where(w => w.Id != 6))
        {
            Apply(file, w);
        }
        AssertClean(model, first, file);
        model.Advance(first, file);

        WriteLog second = WriteLog.Parse("""
            CONNECTED
            W 1 2000 10 1 9777509567454608800
            A 1
            END done
            """);
        Apply(file, second.Writes[0]);
        Apply(file, first.Writes.Single(w => w.Id == 6));   // the dead server's write landing late
        AssertClean(model, second, file);

        file[250] ^= 1;   // inside the first lifetime's FUA write, now part of the baseline
        Assert.Equal(1, model.Check(second, file, Durability.FuaOrFlushed).BadBytes);
    }

    [Fact]
    public void Parse_RejectsALogWithoutEnd_AndDoubleAcknowledgements()
    {
        Assert.Throws<FormatException>(() => WriteLog.Parse("CONNECTED\nW 1 0 1 0 15501686781378355951\nA 1\n"));
        Assert.Throws<FormatException>(() => WriteLog.Parse("CONNECTED\nW 1 0 1 0 15501686781378355951\nA 1\nA 1\nEND x\n"));
    }

    [Fact]
    public void PatternByte_MatchesTheWritersFormula()
    {
        // crash_writer.py: byte b is byte b%8 (little-endian) of (b // 8) XOR key.
        const ulong key = 0x0123456789abcdef;
        Assert.Equal(0xef, LoggedWrite.PatternByte(key, 0));
        Assert.Equal(0x01, LoggedWrite.PatternByte(key, 7));
        Assert.Equal(0xef ^ 0x01, LoggedWrite.PatternByte(key, 8));
        Assert.Equal(0xcd ^ 0x01, LoggedWrite.PatternByte(key, 8 * 257 + 1));
    }

    private static (ShadowModel Model, byte[] File) Start()
    {
        byte[] initial = new byte[Size];
        new Random(7).NextBytes(initial);
        return (new ShadowModel(initial), (byte[])initial.Clone());
    }

    private static void Apply(byte[] file, LoggedWrite w, long from = -1)
    {
        for (long b = Math.Max(w.Offset, from); b < w.End; b++)
        {
            file[b] = w.ByteAt(b);
        }
    }

    /// <summary>The bytes of <paramref name="w"/> the file does not hold (a byte can hold its value by chance).</summary>
    private static int Differing(byte[] file, LoggedWrite w)
    {
        int count = 0;
        for (long b = w.Offset; b < w.End; b++)
        {
            count += file[b] == w.ByteAt(b) ? 0 : 1;
        }
        Assert.InRange(count, 1, w.Length);
        return count;
    }

    private static void AssertClean(ShadowModel model, WriteLog log, byte[] file)
    {
        foreach (Durability rule in Enum.GetValues<Durability>())
        {
            CheckResult result = model.Check(log, file, rule);
            Assert.True(result.Clean, $"{rule}: {result.BadBytes} bad bytes\n{result.Details}");
        }
    }
}
