using CsCheck;
using NbdFast.Fuzzing;
using NbdFast.Protocol;

namespace NbdFast.Tests.Fuzzing;

/// <summary>
/// The request parser, validator and executor driven with random and mutated request streams in every reply
/// style: serving never throws, always closes the connection, and every reply frames in the negotiated style
/// (see <see cref="TransmissionChecker"/>).
/// </summary>
public sealed class TransmissionProperties
{
    private const ulong Size = TransmissionConfig.DeviceSize;

    private static readonly Gen<ulong> Offsets = Gen.Frequency(
        (4, Gen.ULong[0, Size]), (1, Gen.OneOf(Size - 1, Size, Size + 1, 1UL << 63, ulong.MaxValue, ulong.MaxValue - 4095)));

    private static readonly Gen<ulong> Lengths = Gen.Frequency(
        (4, Gen.ULong[0, 8192]), (1, Gen.OneOf(Size, Size + 1, 0xFFFF_FFFFUL, 1UL << 32, 1UL << 63, ulong.MaxValue)));

    private static readonly Gen<(NbdRequest, byte[])> Requests =
        Gen.Select(Gen.Frequency((8, Gen.UShort[0, 7]), (1, Gen.UShort)), Gen.Frequency((3, Gen.Const((ushort)0)), (1, Gen.UShort[0, 63])),
            Offsets, Lengths, Gen.Int[0, 64],
            (command, flags, offset, length, payload) =>
            {
                var request = new NbdRequest((NbdCommandFlags)flags, (NbdCommand)command, Cookie: offset ^ length, offset, length);
                // A payload as long as a small WRITE claims, otherwise a few bytes (which misframe on purpose).
                int bytes = (NbdCommand)command == NbdCommand.Write && length <= 8192 ? (int)length : payload % 5 == 0 ? payload : 0;
                return (request, new byte[bytes]);
            });

    [Fact]
    public void RandomRequestStreamsAreAnsweredInTheNegotiatedStyle() =>
        Gen.Select(Gen.Byte.Select(TransmissionConfig.FromByte), Requests.Array[0, 8], Gen.Select(Gen.Int[0, 8000], Gen.Byte).Array[0, 3])
            .Sample((config, requests, mutations) =>
            {
                // Compact headers cannot carry 64-bit lengths: those requests are left to the extended style.
                var encodable = requests.Where(r => config.ExtendedHeaders || r.Item1.Length <= uint.MaxValue);
                byte[] input = Seeds.Transmission(config, encodable);
                foreach ((int at, byte value) in mutations)
                {
                    if (input.Length > 1)
                    {
                        input[1 + at % (input.Length - 1)] = value;
                    }
                }
                TransmissionOutcome outcome = TransmissionSession.Run(config, input.AsSpan(1));
                TransmissionChecker.Check(config, outcome);
            }, iter: 1500);

    [Fact]
    public void EverySeedSessionIsAnsweredInItsStyle()
    {
        foreach ((string name, byte[] input) in Seeds.Transmissions())
        {
            var config = TransmissionConfig.FromByte(input[0]);
            TransmissionOutcome outcome = TransmissionSession.Run(config, input.AsSpan(1));
            TransmissionChecker.Check(config, outcome);
            Assert.True(outcome.Replies.Length > 0, name);
        }
    }
}
