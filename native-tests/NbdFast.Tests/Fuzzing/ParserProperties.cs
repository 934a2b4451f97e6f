using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using CsCheck;
using NbdFast.Fuzzing;
using NbdFast.IO.Tls;
using NbdFast.Negotiation;
using NbdFast.Protocol;
using NbdFast.Transmission;

namespace NbdFast.Tests.Fuzzing;

/// <summary>
/// Property tests of the payload parsers: random and mutated bytes never throw (null or false is the only
/// refusal), valid encodings round trip, and a lying length or count field is refused.
/// </summary>
public sealed class ParserProperties
{
    private const int Iterations = 2000;

    /// <summary>Names: mostly short and printable, sometimes multi-byte, sometimes at or over the 4096-byte limit.</summary>
    private static readonly Gen<string> Names = Gen.Frequency(
        (6, Gen.String[Gen.Char['a', 'z'], 0, 12]),
        (2, Gen.OneOf("a", "é", "€", "😀", ":", "/").Array[0, 8].Select(parts => string.Concat(parts))),
        (1, Gen.Int[4094, 4098].Select(n => new string('n', n))));

    [Fact]
    public void ClientTextAcceptsExactlyBoundedNulFreeUtf8() =>
        Gen.Frequency((3, Gen.Byte.Array[0, 64]), (1, Gen.Int[4090, 4100].Select(n => new byte[n]).Select(b => { b.AsSpan().Fill((byte)'x'); return b; })))
            .Sample(bytes =>
            {
                string? text = ClientText.TryDecode(bytes);
                bool expected = bytes.Length <= NbdLimits.MaxStringLength && !bytes.Contains((byte)0) && Utf8.IsValid(bytes);
                Assert.Equal(expected, text is not null);
                if (text is not null)
                {
                    Assert.Equal(bytes, Encoding.UTF8.GetBytes(text));
                }
            }, iter: Iterations);

    [Fact]
    public void ClientTextRoundTripsValidStrings() =>
        Names.Sample(name =>
        {
            byte[] bytes = Encoding.UTF8.GetBytes(name);
            Assert.Equal(bytes.Length <= NbdLimits.MaxStringLength ? name : null, ClientText.TryDecode(bytes));
            Assert.True(ClientText.Echo(name).Length <= 83);
        }, iter: 500);

    [Fact]
    public void InfoRequestsRoundTrip() =>
        Gen.Select(Names, Gen.UShort.Array[0, 6]).Sample((name, infos) =>
        {
            InfoRequest? request = OptionParser.ParseInfo(TransmissionSession.InfoData(name, infos));
            if (Encoding.UTF8.GetByteCount(name) > NbdLimits.MaxStringLength)
            {
                Assert.Null(request);
                return;
            }
            Assert.NotNull(request);
            Assert.Equal(name, request.Value.Name);
            var expected = InfoRequests.None;
            foreach (ushort info in infos)
            {
                expected |= info switch { 1 => InfoRequests.Name, 2 => InfoRequests.Description, 3 => InfoRequests.BlockSize, _ => InfoRequests.None };
            }
            Assert.Equal(expected, request.Value.Requests);
        }, iter: Iterations);

    [Fact]
    public void InfoRequestsWithLyingFieldsAreRefused() =>
        Gen.Select(Names, Gen.UShort.Array[0, 6], Gen.Int[0, 3], Gen.UInt).Sample((name, infos, field, lie) =>
        {
            byte[] data = TransmissionSession.InfoData(name, infos);
            int nameLength = Encoding.UTF8.GetByteCount(name);
            switch (field)
            {
                case 0: // the name length
                    if (lie == nameLength) return;
                    BinaryPrimitives.WriteUInt32BigEndian(data, lie);
                    break;
                case 1: // the request count
                    if ((ushort)lie == infos.Length) return;
                    BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + nameLength), (ushort)lie);
                    break;
                case 2: // truncated
                    data = data[..(int)(lie % (uint)data.Length)];
                    break;
                default: // trailing bytes
                    data = [.. data, (byte)lie];
                    break;
            }
            // A lie may still frame by accident (e.g. a shorter name whose tail reads as a count); it must then
            // describe exactly the bytes present. Otherwise it is refused. Never an exception.
            if (OptionParser.ParseInfo(data) is InfoRequest parsed)
            {
                int parsedName = Encoding.UTF8.GetByteCount(parsed.Name);
                Assert.Equal(data.Length, 4 + parsedName + 2 + 2 * BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(4 + parsedName)));
            }
        }, iter: Iterations);

    [Fact]
    public void MetaContextRequestsRoundTrip() =>
        Gen.Select(Names, Names.Array[0, 5]).Sample((export, queries) =>
        {
            MetaContextRequest? request = OptionParser.ParseMetaContext(TransmissionSession.MetaContextData(export, queries));
            bool tooLong = Encoding.UTF8.GetByteCount(export) > NbdLimits.MaxStringLength
                || queries.Any(q => Encoding.UTF8.GetByteCount(q) > NbdLimits.MaxStringLength);
            if (tooLong)
            {
                Assert.Null(request);
                return;
            }
            Assert.NotNull(request);
            Assert.Equal(export, request.ExportName);
            Assert.Equal(queries, request.Queries);
        }, iter: Iterations);

    [Fact]
    public void MetaContextRequestsWithLyingCountsOrLengthsAreRefused() =>
        Gen.Select(Gen.String[Gen.Char['a', 'z'], 0, 8], Gen.String[Gen.Char['a', 'z'], 1, 8].Array[0, 4], Gen.Int[0, 2], Gen.UInt).Sample((export, queries, field, lie) =>
        {
            byte[] data = TransmissionSession.MetaContextData(export, queries);
            int countAt = 4 + export.Length;
            switch (field)
            {
                case 0:
                    if (lie == export.Length) return;
                    BinaryPrimitives.WriteUInt32BigEndian(data, lie);
                    break;
                case 1:
                    if (lie == queries.Length) return;
                    BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(countAt), lie);
                    break;
                default:
                    if (queries.Length == 0 || lie == queries[0].Length) return;
                    BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(countAt + 4), lie);
                    break;
            }
            // Lowercase letters cannot read as a plausible length, so every such lie misframes the request.
            Assert.Null(OptionParser.ParseMetaContext(data));
        }, iter: Iterations);

    [Fact]
    public void ParsersNeverThrowOnRandomBytes() =>
        Gen.Byte.Array[0, 80].Sample(bytes =>
        {
            _ = OptionParser.ParseInfo(bytes);
            _ = OptionParser.ParseMetaContext(bytes);
            _ = ClientText.TryDecode(bytes);
        }, iter: 5000);

    [Fact]
    public void BlockStatusPayloadAcceptsOnlyOneAllocationContext() =>
        Gen.Frequency((1, Gen.Byte.Array[0, 40]), (3, Gen.Select(Gen.ULong, Gen.UInt[0, 3]).Select((length, id) =>
        {
            byte[] payload = new byte[12];
            BinaryPrimitives.WriteUInt64BigEndian(payload, length);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8), id);
            return payload;
        }))).Sample(payload =>
        {
            bool ok = BlockStatusPayload.TryParse(payload, out ulong effect);
            bool expected = payload.Length == 12 && BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(8)) == NegotiatedFeatures.AllocationContextId;
            Assert.Equal(expected, ok);
            if (ok)
            {
                Assert.Equal(BinaryPrimitives.ReadUInt64BigEndian(payload), effect);
            }
        }, iter: Iterations);

    [Fact]
    public void PskFilesParseOrFailWithFormatExceptionOnly() =>
        Gen.Frequency(
            (2, Gen.String[0, 60]),
            (2, Gen.String[Gen.Char["abc:0123456789abcdefXx \r\n\t"], 0, 80]),
            (1, Gen.Int[250, 260].Select(n => new string('i', n) + ":00ff\n"))).Sample(text =>
        {
            try
            {
                IReadOnlyDictionary<string, byte[]> keys = PskKeyFile.Parse(text);
                Assert.NotEmpty(keys);
                Assert.All(keys, pair => Assert.True(pair.Key.Length > 0 && pair.Value.Length > 0 && Encoding.UTF8.GetByteCount(pair.Key) <= 255));
            }
            catch (FormatException)
            {
            }
        }, iter: Iterations);

    [Fact]
    public void PskFilesRoundTrip() =>
        Gen.Select(Gen.String[Gen.Char['a', 'z'], 1, 20], Gen.Byte.Array[1, 64]).List[1, 5].Sample(entries =>
        {
            var unique = entries.GroupBy(e => e.Item1).Select(g => g.First()).ToList();
            string text = string.Join("\r\n", unique.Select(e => $"{e.Item1}:{Convert.ToHexString(e.Item2)}")) + "\n\n";
            IReadOnlyDictionary<string, byte[]> keys = PskKeyFile.Parse(text);
            Assert.Equal(unique.Count, keys.Count);
            foreach ((string identity, byte[] key) in unique)
            {
                Assert.Equal(key, keys[identity]);
            }
        }, iter: 500);
}
