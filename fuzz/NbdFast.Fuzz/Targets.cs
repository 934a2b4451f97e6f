namespace NbdFast.Fuzzing;

/// <summary>
/// The fuzz targets. Input format: one configuration byte (see <see cref="HandshakeConfig.FromByte"/> and
/// <see cref="TransmissionConfig.FromByte"/>), then the client's bytes. A target returns normally when the
/// server behaved; an undocumented exception or a broken reply property escapes as a crash.
/// </summary>
internal static class Targets
{
    public static Action<byte[]> For(string name) => name switch
    {
        "options" => Options,
        "requests" => Requests,
        _ => throw new ArgumentException($"unknown fuzz target '{name}' (options or requests)", nameof(name)),
    };

    /// <summary>Option haggling: any client bytes after the greeting.</summary>
    public static void Options(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        HandshakeConfig config = HandshakeConfig.FromByte(input[0]);
        ReadOnlyMemory<byte> client = input.AsMemory(1);
        HandshakeOutcome outcome = HandshakeSession.Run(config, client);
        HandshakeChecker.Check(config, client.Span, outcome);
    }

    /// <summary>The request parser, validator and executor: any bytes after a fixed handshake.</summary>
    public static void Requests(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        TransmissionConfig config = TransmissionConfig.FromByte(input[0]);
        TransmissionOutcome outcome = TransmissionSession.Run(config, input.AsSpan(1));
        TransmissionChecker.Check(config, outcome);
    }

    public static int Replay(string name, string[] files)
    {
        Action<byte[]> target = For(name);
        int failures = 0;
        foreach (string file in files)
        {
            try
            {
                target(File.ReadAllBytes(file));
                Console.WriteLine($"ok    {file}");
            }
            catch (Exception e)
            {
                // The first crash in full; the rest on one line each (they are usually the same bug).
                failures++;
                Console.WriteLine(failures == 1 ? $"CRASH {file}: {e}" : $"CRASH {file}: {e.GetType().Name}: {e.Message}");
            }
        }
        return failures == 0 ? 0 : 1;
    }

    public static void WriteSeeds(string directory)
    {
        Write(Path.Combine(directory, "options"), Seeds.Handshakes());
        Write(Path.Combine(directory, "requests"), Seeds.Transmissions());
    }

    private static void Write(string directory, IReadOnlyList<(string Name, byte[] Input)> seeds)
    {
        Directory.CreateDirectory(directory);
        foreach ((string name, byte[] input) in seeds)
        {
            File.WriteAllBytes(Path.Combine(directory, name + ".bin"), input);
        }
        Console.WriteLine($"wrote {seeds.Count} seeds to {directory}");
    }
}
