using NbdFast.Fuzzing;
using SharpFuzz;

// Usage:
//   NbdFast.Fuzz options|requests            run under afl-fuzz (or once on standard input without it)
//   NbdFast.Fuzz replay options|requests FILE...   run saved inputs (crash reproduction) and report each
//   NbdFast.Fuzz seeds DIRECTORY             write the seed corpora to DIRECTORY/options and DIRECTORY/requests
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: NbdFast.Fuzz options|requests | replay TARGET FILE... | seeds DIRECTORY");
    return 2;
}
switch (args[0])
{
    case "options":
    case "requests":
        Action<byte[]> target = Targets.For(args[0]);
        Fuzzer.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            target(buffer.ToArray());
        });
        return 0;
    case "replay" when args.Length >= 3:
        return Targets.Replay(args[1], args[2..]);
    case "seeds" when args.Length == 2:
        Targets.WriteSeeds(args[1]);
        return 0;
    default:
        Console.Error.WriteLine($"unknown command '{args[0]}'");
        return 2;
}
